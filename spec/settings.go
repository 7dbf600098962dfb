package spec

// Settings are what can be switched while chattap runs. They live in the
// chattap_settings bucket under SettingsKey, as JSON, so every process of a
// deployment sees the same values.
type Settings struct {
	// RecordLiveChatEvents is the "Record Live Chat Events" toggle. Off:
	// Observations are still stored but no Live Chat events are produced.
	RecordLiveChatEvents bool `json:"record_live_chat_events"`
}

// SettingsKey is the key of Settings in BucketSettings.
const SettingsKey = "settings"

// DefaultSettings are in force until someone sets others.
var DefaultSettings = Settings{RecordLiveChatEvents: true}
