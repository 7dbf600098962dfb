package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/caarlos0/env/v11"
	"github.com/chattap/chattap/broker"
	"github.com/chattap/chattap/ingest"
	"github.com/chattap/chattap/mapper"
	"github.com/chattap/chattap/sinks"
	"github.com/chattap/chattap/spec"
)

// config is every setting of chattap. Each field's env tag names its
// variable, envDefault its default and help its meaning; `chattap config`
// prints them from these tags, so this struct is the one place they live.
type config struct {
	ListenAddr      string `env:"CHATTAP_LISTEN_ADDR" envDefault:"127.0.0.1:8080" help:"HTTP address of the taps, /healthz and /readyz (and /metrics, /admin/*, /debugger unless CHATTAP_ADMIN_ADDR); on a non-loopback address every route that records needs its token"`
	AdminAddr       string `env:"CHATTAP_ADMIN_ADDR" help:"a listener of its own for /metrics, /admin/* and /debugger (and pprof when CHATTAP_PPROF_ADDR is the same address); empty: they are on CHATTAP_LISTEN_ADDR"`
	AllowOpen       bool   `env:"CHATTAP_ALLOW_UNAUTHENTICATED" envDefault:"false" help:"start even though a route that records has no token on a non-loopback CHATTAP_LISTEN_ADDR, or the embedded NATS listens on a non-loopback CHATTAP_NATS_LISTEN without credentials"`
	DataDir         string `env:"CHATTAP_DATA_DIR" envDefault:"./data" help:"JetStream store of the embedded server"`
	NatsURL         string `env:"CHATTAP_NATS_URL" secret:"url" help:"empty: embedded server; else the URL(s) of an existing NATS cluster, comma-separated"`
	NatsListen      string `env:"CHATTAP_NATS_LISTEN" help:"also expose the embedded server on this address for other processes; a non-loopback address needs CHATTAP_NATS_USER and CHATTAP_NATS_PASSWORD or CHATTAP_NATS_NKEY_SEED_FILE"`
	NatsSync        string `env:"CHATTAP_NATS_SYNC" envDefault:"2m" help:"how often the embedded server fsyncs JetStream's files: a duration, or always (fsync before each acknowledgement); JetStream acknowledges once a message is in the page cache, so a machine crash (not a process crash) can lose what was acknowledged since the last fsync"`
	NatsAuth        broker.Credentials
	StreamReplicas  int           `env:"CHATTAP_STREAM_REPLICAS" envDefault:"1" help:"replicas of the streams and KV buckets when on a cluster"`
	Roles           []string      `env:"CHATTAP_ROLES" envDefault:"ingest,mapper,sinks" help:"which stages this process runs (scale out by splitting them)"`
	Record          bool          `env:"CHATTAP_RECORD_LIVE_CHAT_EVENTS" envDefault:"true" help:"the Record Live Chat Events toggle; when set, it is stored for every process at start; also switchable at run time with PUT /admin/settings"`
	Retention       time.Duration `env:"CHATTAP_RETENTION" envDefault:"168h" help:"how long CHATTAP_RAW and CHATTAP_EVENTS keep messages (replay window)"`
	DLQRetention    time.Duration `env:"CHATTAP_DLQ_RETENTION" envDefault:"720h" help:"how long CHATTAP_DLQ keeps dead letters"`
	ConversationTTL time.Duration `env:"CHATTAP_CONVERSATION_TTL" envDefault:"168h" help:"conversation state with no event for this long is forgotten"`
	DedupWindow     time.Duration `env:"CHATTAP_DEDUP_WINDOW" envDefault:"2m" help:"JetStream drops a message whose Nats-Msg-Id it stored within this window; each id in it is held in memory (100 B or more)"`
	ChannelContact  []string      `env:"CHATTAP_CHANNEL_CONTACT_FIELD" help:"dotted JSON path(s) of the contact's identifier in Custom Channel messages; empty: the likely ones"`
	ChannelName     []string      `env:"CHATTAP_CHANNEL_NAME_FIELD" help:"dotted JSON path(s) of the contact's display name in Custom Channel messages"`
	ChannelBody     []string      `env:"CHATTAP_CHANNEL_BODY_FIELD" help:"dotted JSON path(s) of the message text in Custom Channel messages"`
	ChannelURL      []string      `env:"CHATTAP_CHANNEL_URL_FIELD" help:"dotted JSON path(s) of a media URL in Custom Channel messages"`
	ShutdownTimeout time.Duration `env:"CHATTAP_SHUTDOWN_TIMEOUT" envDefault:"20s" help:"how long a graceful stop may take before what is left is abandoned (and redelivered later)"`
	LogLevel        string        `env:"CHATTAP_LOG_LEVEL" envDefault:"info" help:"debug, info, warn or error"`
	LogFormat       string        `env:"CHATTAP_LOG_FORMAT" envDefault:"text" help:"text or json"`
	MemoryLimit     string        `env:"CHATTAP_MEMORY_LIMIT" envDefault:"96MiB" help:"the Go runtime's soft memory limit (the garbage collector works harder near it; the process never fails for it); off: none; GOMEMLIMIT, when set, wins"`
	PprofAddr       string        `env:"CHATTAP_PPROF_ADDR" help:"serve Go's net/http/pprof profiles on this address (keep it on loopback); empty: off"`

	Ingest       ingest.Options
	Mapper       mapper.Options
	MapperRunner mapper.RunnerOptions
	Sinks        sinks.Options
}

// Roles a process can run.
const (
	roleIngest = "ingest"
	roleMapper = "mapper"
	roleSinks  = "sinks"
)

func (c *config) has(role string) bool { return slices.Contains(c.Roles, role) }

// loadConfig reads the configuration from environ and reports every
// invalid value at once, each with its variable's name.
func loadConfig(environ []string) (*config, error) {
	vars := env.ToMap(environ)
	var c config
	var errs []error
	if err := env.ParseWithOptions(&c, env.Options{Environment: vars}); err != nil {
		errs = append(errs, namedParseErrors(err, vars)...)
	}
	// The file sink is the default destination only while there is no
	// other: with Segment or a webhook on, every event (message bodies,
	// emails) would otherwise also be printed to standard output, which in
	// a container ends in the log system.
	path, chosen := vars["CHATTAP_FILE_SINK_PATH"]
	switch {
	case chosen && path == "":
		// env applies envDefault to an empty value too, but an empty path
		// is how a user turns the sink off.
		c.Sinks.File.Path = ""
	case !chosen && (c.Sinks.Segment.Enabled() || c.Sinks.Webhook.Enabled()):
		c.Sinks.File.Path = ""
	}
	errs = append(errs, unlessReported(c.validate(), errs)...)
	switch len(errs) {
	case 0:
		return &c, nil
	case 1:
		return nil, fmt.Errorf("invalid configuration: %w", errs[0])
	}
	return nil, fmt.Errorf("invalid configuration:\n  %w", joinLines(errs))
}

// unlessReported drops the errors of errs that name a variable reported
// already: a value that did not parse leaves its field zero, which
// validation would report a second time for the same mistake.
func unlessReported(errs, reported []error) []error {
	var out []error
next:
	for _, e := range errs {
		name, _, _ := strings.Cut(e.Error(), ":")
		for _, r := range reported {
			if strings.HasPrefix(r.Error(), name+":") {
				continue next
			}
		}
		out = append(out, e)
	}
	return out
}

func (c *config) validate() []error {
	var errs []error
	if c.StreamReplicas < 1 || c.StreamReplicas > 5 {
		errs = append(errs, fmt.Errorf("CHATTAP_STREAM_REPLICAS: must be 1 to 5, is %d", c.StreamReplicas))
	}
	for _, r := range c.Roles {
		if r != roleIngest && r != roleMapper && r != roleSinks {
			errs = append(errs, fmt.Errorf("CHATTAP_ROLES: unknown role %q (ingest, mapper, sinks)", r))
		}
	}
	if len(c.Roles) == 0 {
		errs = append(errs, errors.New("CHATTAP_ROLES: name at least one of ingest, mapper, sinks"))
	}
	if c.NatsURL == "" && c.DataDir == "" {
		errs = append(errs, errors.New("CHATTAP_DATA_DIR: must be set when the embedded server runs (CHATTAP_NATS_URL empty)"))
	}
	for _, d := range []struct {
		env string
		v   time.Duration
	}{{"CHATTAP_RETENTION", c.Retention}, {"CHATTAP_DLQ_RETENTION", c.DLQRetention}, {"CHATTAP_CONVERSATION_TTL", c.ConversationTTL}, {"CHATTAP_DEDUP_WINDOW", c.DedupWindow}, {"CHATTAP_SHUTDOWN_TIMEOUT", c.ShutdownTimeout}} {
		if d.v <= 0 {
			errs = append(errs, fmt.Errorf("%s: must be positive, is %s", d.env, d.v))
		}
	}
	if _, _, err := c.natsSync(); err != nil {
		errs = append(errs, err)
	}
	if _, err := c.memoryLimit(); err != nil {
		errs = append(errs, err)
	}
	if _, err := c.logLevel(); err != nil {
		errs = append(errs, err)
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		errs = append(errs, fmt.Errorf("CHATTAP_LOG_FORMAT: must be text or json, is %q", c.LogFormat))
	}
	if c.NatsURL == "" && c.NatsAuth.CredsFile != "" {
		errs = append(errs, errors.New("CHATTAP_NATS_CREDS_FILE: only for CHATTAP_NATS_URL; the embedded server takes CHATTAP_NATS_USER and CHATTAP_NATS_PASSWORD or CHATTAP_NATS_NKEY_SEED_FILE"))
	}
	for _, v := range []interface{ Validate() error }{&c.Ingest, c.Mapper, c.MapperRunner, c.Sinks, c.NatsAuth} {
		if err := v.Validate(); err != nil {
			errs = append(errs, unjoin(err)...)
		}
	}
	return errs
}

// natsSync reads CHATTAP_NATS_SYNC: always, or a positive duration.
func (c *config) natsSync() (interval time.Duration, always bool, err error) {
	if c.NatsSync == "always" {
		return 0, true, nil
	}
	d, err := time.ParseDuration(c.NatsSync)
	if err != nil || d <= 0 {
		return 0, false, fmt.Errorf("CHATTAP_NATS_SYNC: must be always or a positive duration (2m, 1s), is %q", c.NatsSync)
	}
	return d, false, nil
}

func (c *config) streamOptions() broker.StreamOptions {
	return broker.StreamOptions{Replicas: c.StreamReplicas, Retention: c.Retention, DLQRetention: c.DLQRetention, ConversationTTL: c.ConversationTTL, Duplicates: c.DedupWindow}
}

// mapperOptions are the Mapper's options as serve's mapper stage uses
// them, so that remap maps as the live mapper does.
func (c *config) mapperOptions() mapper.Options {
	o := c.Mapper
	o.Version, o.ChannelFields = versionString(), c.channelFields()
	return o
}

func (c *config) channelFields() spec.ChannelFields {
	return spec.ChannelFields{Contact: c.ChannelContact, Name: c.ChannelName, Body: c.ChannelBody, URL: c.ChannelURL}
}

func (c *config) logLevel() (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(c.LogLevel)); err != nil {
		return 0, fmt.Errorf("CHATTAP_LOG_LEVEL: must be debug, info, warn or error, is %q", c.LogLevel)
	}
	return l, nil
}

func (c *config) logger(w io.Writer) *slog.Logger {
	level, _ := c.logLevel()
	opts := &slog.HandlerOptions{Level: level}
	if c.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// namedParseErrors rewrites the env library's errors, which name a Go
// field, to name the variable a user set.
func namedParseErrors(err error, vars map[string]string) []error {
	var agg env.AggregateError
	if !errors.As(err, &agg) {
		return []error{err}
	}
	fields := settings(&config{})
	var out []error
	for _, e := range agg.Errors {
		var pe env.ParseError
		if !errors.As(e, &pe) {
			out = append(out, e)
			continue
		}
		name := pe.Name
		for _, f := range fields {
			if _, set := vars[f.Env]; set && f.Field == pe.Name && !parses(f, vars[f.Env]) {
				name = f.Env
			}
		}
		out = append(out, fmt.Errorf("%s: %q: %v", name, vars[name], pe.Err))
	}
	return out
}

// parses reports whether value is valid for the setting's type: the env
// library names only the Go field of a bad value, and several options
// structs share field names (Timeout), so this finds which variable it was.
func parses(f setting, value string) bool {
	probe := reflect.New(reflect.StructOf([]reflect.StructField{{Name: "V", Type: f.Value.Type(), Tag: `env:"V"`}}))
	return env.ParseWithOptions(probe.Interface(), env.Options{Environment: map[string]string{"V": value}}) == nil
}

func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// joinLines joins errors one to a line, indented under the heading.
func joinLines(errs []error) error {
	msgs := make([]string, len(errs))
	for i, e := range errs {
		msgs[i] = e.Error()
	}
	return errors.New(strings.Join(msgs, "\n  "))
}

// setting is one configuration variable as `chattap config` lists it.
type setting struct {
	Env, Default, Help, Field string
	Secret                    string // "true": a secret; "url": URLs whose user info and query may hold one
	Value                     reflect.Value
}

// settings walks c's fields, nested option structs included, in order.
func settings(c *config) []setting {
	var out []setting
	var walk func(v reflect.Value)
	walk = func(v reflect.Value) {
		t := v.Type()
		for i := range t.NumField() {
			f := t.Field(i)
			name, ok := f.Tag.Lookup("env")
			if !ok && f.Type.Kind() == reflect.Struct && f.Type != reflect.TypeFor[time.Time]() {
				walk(v.Field(i))
				continue
			}
			if !ok || name == "-" {
				continue
			}
			out = append(out, setting{Env: strings.Split(name, ",")[0], Default: f.Tag.Get("envDefault"), Help: f.Tag.Get("help"), Field: f.Name, Secret: f.Tag.Get("secret"), Value: v.Field(i)})
		}
	}
	walk(reflect.ValueOf(c).Elem())
	return out
}

// shown is a setting's value as it may be printed: secrets redacted.
func (s setting) shown() string {
	v := s.Value
	var text string
	switch {
	case v.Kind() == reflect.Slice:
		parts := make([]string, v.Len())
		for i := range parts {
			parts[i] = fmt.Sprint(v.Index(i).Interface())
		}
		text = strings.Join(parts, ",")
	default:
		text = fmt.Sprint(v.Interface())
	}
	switch {
	case text == "":
		return ""
	case s.Secret == "true":
		return "(set, redacted)"
	case s.Secret == "url":
		urls := strings.Split(text, ",")
		for i, u := range urls {
			urls[i] = ingest.RedactURL(strings.TrimSpace(u))
		}
		return strings.Join(urls, ",")
	}
	return text
}

// printConfig writes every setting, its variable, default and current value.
func printConfig(w io.Writer, c *config) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "VARIABLE\tDEFAULT\tCURRENT\tMEANING")
	for _, s := range settings(c) {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", s.Env, orEmpty(s.Default), orEmpty(s.shown()), s.Help)
	}
	return tw.Flush()
}

// printConfigMarkdown writes the table of settings docs/configuration.md holds.
func printConfigMarkdown(w io.Writer) error {
	fmt.Fprintln(w, "| variable | default | meaning |")
	fmt.Fprintln(w, "|---|---|---|")
	for _, s := range settings(&config{}) {
		def := "empty"
		if s.Default != "" {
			def = "`" + s.Default + "`"
		}
		if _, err := fmt.Fprintf(w, "| `%s` | %s | %s |\n", s.Env, def, strings.ReplaceAll(s.Help, "|", "\\|")); err != nil {
			return err
		}
	}
	return nil
}

func orEmpty(s string) string {
	if s == "" {
		return "(empty)"
	}
	return s
}

// envIsSet reports whether the variable was given explicitly.
func envIsSet(environ []string, name string) bool {
	_, ok := env.ToMap(environ)[name]
	return ok
}
