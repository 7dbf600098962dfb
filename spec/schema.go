package spec

import "embed"

// Schemas holds the JSON Schemas (draft 2020-12) of what chattap
// publishes: schema/observation.schema.json for CHATTAP_RAW and
// schema/message.schema.json for CHATTAP_EVENTS, for consumers elsewhere
// in an analytics stack to validate against.
//
//go:embed schema/*.schema.json
var Schemas embed.FS

// Schema paths within Schemas.
const (
	ObservationSchemaPath = "schema/observation.schema.json"
	MessageSchemaPath     = "schema/message.schema.json"
)
