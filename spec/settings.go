package spec

// Settings are what can be switched while chattap runs. They live in the
// chattap_settings bucket under SettingsKey, as JSON, so every process of a
// deployment sees the same values.
type Settings struct {
	// RecordLiveChatEvents is the "Record Live Chat Events" toggle. Off:
	// Observations are still stored but no Live Chat events are produced.
	RecordLiveChatEvents bool `json:"record_live_chat_events"`
	// DisabledEvents are Live Chat event names ("Live Chat Message Sent")
	// switched off at run time, on top of the events the mapper is
	// configured to emit: they are not produced, but the conversation
	// state they imply is still kept, so switching one back on later
	// does not start a conversation twice.
	DisabledEvents []string `json:"disabled_events,omitempty"`
}

// EventEnabled reports whether event is not among s.DisabledEvents.
func (s Settings) EventEnabled(event string) bool {
	for _, d := range s.DisabledEvents {
		if d == event {
			return false
		}
	}
	return true
}

// SettingsKey is the key of Settings in BucketSettings.
const SettingsKey = "settings"

// DefaultSettings are in force until someone sets others.
var DefaultSettings = Settings{RecordLiveChatEvents: true}
