// Package metrics adapts Prometheus for chattap: each stage gets a typed set
// of counters (NewIngest, NewMapper, NewSinks) registered on one Registry
// that /metrics serves. No other package imports the Prometheus client.
package metrics

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Registry holds every metric of one chattap process. There is no global
// registry: tests make their own.
type Registry struct {
	reg   *prometheus.Registry
	names []string
}

// New returns a Registry with the Go runtime and process collectors.
func New() *Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return &Registry{reg: reg}
}

// Handler serves the registry in Prometheus text format.
func (r *Registry) Handler() http.Handler {
	return promhttp.HandlerFor(r.reg, promhttp.HandlerOpts{Registry: r.reg})
}

// Names lists the series names of every chattap metric registered on r,
// a histogram's as its _bucket, _sum and _count, whether or not it has
// been observed yet (a labelled metric is absent from /metrics until it
// has): what a dashboard or an alert may query.
func (r *Registry) Names() []string { return append([]string(nil), r.names...) }

// Gather returns the value of the counter or gauge name with the given
// labels, summed over the label values left out; for tests and the bench.
func (r *Registry) Gather(name string, labels map[string]string) float64 {
	families, err := r.reg.Gather()
	if err != nil {
		return 0
	}
	var sum float64
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	metric:
		for _, m := range f.GetMetric() {
			for k, v := range labels {
				found := false
				for _, lp := range m.GetLabel() {
					if lp.GetName() == k && lp.GetValue() == v {
						found = true
					}
				}
				if !found {
					continue metric
				}
			}
			switch {
			case m.Counter != nil:
				sum += m.Counter.GetValue()
			case m.Gauge != nil:
				sum += m.Gauge.GetValue()
			}
		}
	}
	return sum
}

func (r *Registry) counterVec(name, help string, labels ...string) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
	r.reg.MustRegister(c)
	r.names = append(r.names, name)
	return c
}

func (r *Registry) counter(name, help string) prometheus.Counter {
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
	r.reg.MustRegister(c)
	r.names = append(r.names, name)
	return c
}

func (r *Registry) gauge(name, help string) prometheus.Gauge {
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: help})
	r.reg.MustRegister(g)
	r.names = append(r.names, name)
	return g
}

func (r *Registry) gaugeVec(name, help string, labels ...string) *prometheus.GaugeVec {
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, labels)
	r.reg.MustRegister(g)
	r.names = append(r.names, name)
	return g
}

func (r *Registry) histogramVec(name, help string, buckets []float64, labels ...string) *prometheus.HistogramVec {
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets}, labels)
	r.reg.MustRegister(h)
	r.names = append(r.names, name+"_bucket", name+"_sum", name+"_count")
	return h
}
