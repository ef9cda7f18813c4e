package publisher

import "time"

// LightAsync is lightAsync, for the tests of package publisher_test.
var LightAsync = lightAsync

// SetClock makes js, a context of LightAsync, read the time from now.
func SetClock(js any, now func() time.Time) { js.(*asyncJS).now = now }
