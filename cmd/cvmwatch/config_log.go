package main

// LogConfig shapes the logs.
type LogConfig struct {
	Level  string `yaml:"level"`
	Format string `yaml:"format"`
}

// defaultLog is the log section of a file that leaves it out.
func defaultLog() LogConfig { return LogConfig{Level: "info", Format: "text"} }

// validate reports the section's problems under key.
func (l LogConfig) validate(key string) configErrors {
	var errs configErrors
	switch l.Level {
	case "debug", "info", "warn", "error":
	default:
		errs.add(key+".level", "%q must be debug, info, warn or error", l.Level)
	}
	switch l.Format {
	case "text", "json":
	default:
		errs.add(key+".format", "%q must be text or json", l.Format)
	}
	return errs
}
