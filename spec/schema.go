package spec

import "embed"

// Schemas holds the JSON Schemas (draft 2020-12) of what chattap
// publishes: schema/record.schema.json for CHATTAP_RAW (version 2, one
// record per exchange), schema/observation.schema.json for the version 1
// messages still found there, and
// schema/message.schema.json for CHATTAP_EVENTS, for consumers elsewhere
// in an analytics stack to validate against.
//
//go:embed schema/*.schema.json
var Schemas embed.FS

// Schema paths within Schemas.
const (
	RecordSchemaPath      = "schema/record.schema.json"
	ObservationSchemaPath = "schema/observation.schema.json"
	MessageSchemaPath     = "schema/message.schema.json"
)
