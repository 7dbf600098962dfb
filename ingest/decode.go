package ingest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"time"

	"github.com/chattap/chattap/spec"
)

// exchange is what the Observations of one HTTP exchange share.
type exchange struct {
	id       string
	received time.Time
	fields   spec.ChannelFields
}

func (ex *exchange) observation(src spec.Source, index int) *spec.Observation {
	id := ex.id
	if index > 0 {
		id = ex.id + "-" + strconv.Itoa(index)
	}
	return &spec.Observation{V: spec.ObservationVersion, ID: id, Source: src, ReceivedAt: ex.received, Exchange: ex.id, Index: index}
}

// undecodable records a body that is not the JSON its route expects,
// keeping the bytes as they came.
func (ex *exchange) undecodable(src spec.Source, index int, body []byte, err error) *spec.Observation {
	o := ex.observation(src, index)
	o.Kind = spec.KindUndecodable
	o.Error = err.Error()
	if json.Valid(body) {
		o.Payload = bytes.TrimSpace(body)
	} else {
		o.PayloadRaw = body
	}
	return o
}

// decodeChatbot turns a body that holds chatbot events (a webhook, a bot's
// reply or a call to the API URL) into one Observation per event, numbered
// from first. cid names the conversation of events that do not name their
// own (a reply inherits the webhook's). A webhook is one event; the other
// two may hold none, one or a list.
func (ex *exchange) decodeChatbot(src spec.Source, body []byte, first int, cid string) []*spec.Observation {
	var events []spec.HeadedEvent
	if src == spec.SourceChatbotWebhook {
		raw := bytes.TrimSpace(body)
		h, err := spec.DecodeChatbotHead(raw)
		events = []spec.HeadedEvent{{Raw: raw, Head: h, Err: err}}
	} else {
		var err error
		if events, err = spec.SplitChatbotEvents(body); err != nil {
			return []*spec.Observation{ex.undecodable(src, first, body, err)}
		}
	}
	out := make([]*spec.Observation, 0, len(events))
	for i, ev := range events {
		if ev.Err != nil {
			out = append(out, ex.undecodable(src, first+i, ev.Raw, ev.Err))
			continue
		}
		o := ex.observation(src, first+i)
		o.Kind = spec.SubjectToken(string(ev.Head.Name))
		o.ConversationID = string(ev.Head.Cid)
		if o.ConversationID == "" {
			o.ConversationID = cid
		}
		o.Payload = ev.Raw
		out = append(out, o)
	}
	return out
}

// decodeChannel turns a Custom Channel message into its Observation.
func (ex *exchange) decodeChannel(src spec.Source, body []byte) *spec.Observation {
	m, err := spec.DecodeChannelMessage(body, ex.fields)
	if err != nil {
		return ex.undecodable(src, 0, body, err)
	}
	o := ex.observation(src, 0)
	o.Kind = "message"
	if m.Event != "" {
		o.Kind = spec.SubjectToken(m.Event)
	}
	o.ConversationID = m.Conversation()
	o.Payload = bytes.TrimSpace(body)
	return o
}

// decodeAddon turns an add-on callback into its Observation; unlike the
// proxied routes, a body that is not a JSON object is refused. Its id is
// derived from the body, so the same callback sent again (Userlike retries
// after a 503, also when the first publish timed out but was stored) is
// dropped by JetStream's dedup within its window (broker.StreamOptions
// Duplicates). The price: two byte-identical callbacks within that window
// are stored once; they say the same thing, so nothing is lost.
func (ex *exchange) decodeAddon(body []byte) (*spec.Observation, error) {
	ev, err := spec.DecodeAddonEvent(body)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(body)
	ex.id = "addon-" + hex.EncodeToString(sum[:16])
	o := ex.observation(spec.SourceAddon, 0)
	o.Kind = ev.Kind()
	o.ConversationID = ev.Conversation()
	o.Payload = bytes.TrimSpace(body)
	return o, nil
}
