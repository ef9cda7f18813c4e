package main

import (
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// dtoGauge reads a gauge metric's value.
func dtoGauge(m prometheus.Metric) float64 {
	var pb dto.Metric
	if err := m.Write(&pb); err != nil || pb.Gauge == nil {
		return 0
	}
	return pb.Gauge.GetValue()
}
