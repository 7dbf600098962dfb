package main

import (
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"strconv"
	"sync/atomic"
)

// words make up the messages: plain ASCII, so a text needs no JSON escaping.
var words = []string{
	"hello", "I", "have", "a", "question", "about", "my", "balance", "order", "number", "is",
	"the", "delivery", "was", "late", "can", "you", "help", "me", "please", "thanks", "invoice",
	"refund", "account", "password", "reset", "when", "will", "it", "arrive", "tracking", "code",
	"customer", "support", "agent", "sure", "let", "check", "that", "for", "one", "moment",
	"your", "payment", "went", "through", "on", "Monday", "and", "should", "be", "there", "soon",
}

// texts of varied length: log-uniform between 10 and 2000 characters, as
// chat messages are mostly short with a long tail.
func makeTexts(rng *rand.Rand, n int) []string {
	out := make([]string, n)
	for i := range out {
		length := int(math.Exp(math.Log(10) + rng.Float64()*(math.Log(2000)-math.Log(10))))
		b := make([]byte, 0, length+16)
		for len(b) < length {
			if len(b) > 0 {
				b = append(b, ' ')
			}
			b = append(b, words[rng.IntN(len(words))]...)
		}
		out[i] = string(b[:max(length, 10)])
	}
	return out
}

// workload is what the load generator sends and what the fake bot
// answers. Everything is a pure function of its inputs, so that the client
// knows the exact bytes the bot sent (and checks them) and how many Live
// Chat events chattap should deliver.
type workload struct {
	texts   []string
	replies []reply // the bot's answers, picked by a hash of the request
	greet   reply   // the only answer in light mode
	// light makes the bot answer every webhook with one greeting: used to
	// fill conversation state quickly.
	light atomic.Bool
}

// reply is one answer of the bot and how many events it holds, all with text.
type reply struct {
	body   []byte
	events int
}

func newWorkload(seed uint64) *workload {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	w := &workload{texts: makeTexts(rng, 512)}
	w.greet = makeReply([]string{"Hi, I am the support bot. How can I help?"}, nil)
	for range 64 {
		n := 1 + rng.IntN(10)
		bodies := make([]string, n)
		for i := range bodies {
			bodies[i] = w.texts[rng.IntN(len(w.texts))]
		}
		var opts []string
		if rng.IntN(4) == 0 {
			opts = []string{"Billing", "Delivery", "Something else"}
		}
		w.replies = append(w.replies, makeReply(bodies, opts))
	}
	return w
}

// makeReply is a bot's JSON list of events: messages, the last one a
// bubbles element when opts are given.
func makeReply(bodies, opts []string) reply {
	b := []byte{'['}
	for i, body := range bodies {
		if i > 0 {
			b = append(b, ',')
		}
		if i == len(bodies)-1 && len(opts) > 0 {
			b = append(b, `{"packet":{"name":"bubbles","payload":{"body":`...)
			b = strconv.AppendQuote(b, body)
			b = append(b, `,"options":[`...)
			for j, o := range opts {
				if j > 0 {
					b = append(b, ',')
				}
				b = fmt.Appendf(b, `{"label":%q,"value":"opt%d"}`, o, j+1)
			}
			b = append(b, `]}}}`...)
			continue
		}
		b = append(b, `{"packet":{"name":"message","payload":{"body":`...)
		b = strconv.AppendQuote(b, body)
		b = append(b, `}}}`...)
	}
	return reply{body: append(b, ']'), events: len(bodies)}
}

// replyFor is what the bot answers to a webhook body.
func (w *workload) replyFor(body []byte) reply {
	if w.light.Load() {
		return w.greet
	}
	h := fnv.New64a()
	h.Write(body)
	return w.replies[h.Sum64()%uint64(len(w.replies))]
}

// Kinds of webhook event the load sends.
const (
	kindStart   = "start"
	kindMessage = "message"
	kindClick   = "click"
)

// conversation is one chatbot session a load worker is driving.
type conversation struct {
	cid    string
	traits bool // the contact's name and email are known
	step   int  // events sent so far
	length int  // events after start
	widget int
}

// cid is a chatbot session id in Userlike's form, unique for the run,
// the scenario and n.
func cid(run uint32, scenario string, n uint64) string {
	h := fnv.New32a()
	h.Write([]byte(scenario))
	return fmt.Sprintf("chatbot::258:%08x%08x%016x", run, h.Sum32(), n)
}

// newConversation makes conversation n of a scenario.
func newConversation(run uint32, scenario string, n uint64, rng *rand.Rand) *conversation {
	return &conversation{cid: cid(run, scenario, n), traits: n%2 == 0, length: 2 + rng.IntN(7), widget: int(n % 3)}
}

// webhook appends to dst the body of a webhook event of kind in c.
func (w *workload) webhook(dst []byte, c *conversation, kind string, rng *rand.Rand) []byte {
	dst = append(dst, `{"info":{"approach_mode":"normal","cid":"`...)
	dst = append(dst, c.cid...)
	dst = append(dst, `","contact":{`...)
	if c.traits {
		// The same contact on every event of the conversation, and a
		// contact of its own (its id is the cid's unique tail): one
		// identify. A contact id shared by concurrent conversations would
		// flip its traits back and forth, and each change is an identify.
		dst = fmt.Appendf(dst, `"id":"%s","name":"Contact %s","email":"contact-%s@example.com"`, c.cid[len(c.cid)-16:], c.cid[len(c.cid)-6:], c.cid[len(c.cid)-12:])
	}
	dst = fmt.Appendf(dst, `},"context":{"step":%d},"conversation":{},"widget":{"id":%d,"name":"Support %d"}},"packet":{"name":"%s","payload":`, c.step, 10+c.widget, c.widget, kind)
	switch kind {
	case kindStart:
		dst = append(dst, `{}`...)
	case kindClick:
		dst = fmt.Appendf(dst, `{"option":%d}`, 1+rng.IntN(3))
	default:
		dst = append(dst, `{"body":`...)
		dst = strconv.AppendQuote(dst, w.texts[rng.IntN(len(w.texts))])
		dst = append(dst, '}')
	}
	return append(dst, `}}`...)
}

// expectedEvents is how many Segment messages chattap's mapper makes of
// one webhook exchange of kind whose reply held replyEvents events with
// text, with CHATTAP_* mapping defaults: a start is Conversation Started
// (and an identify when the contact's traits first appear, on the first
// event); a message or a click is one Message Sent (Option Selected is
// opt-in); each reply event with text is one Message Received.
// cmd/chattap-bench's tests check this against the mapper itself.
func expectedEvents(kind string, first, traits bool, replyEvents int) int {
	n := replyEvents
	if kind == kindStart {
		n++
	} else {
		n++ // Message Sent
		if first {
			n++ // Conversation Started, which precedes any first event
		}
	}
	if first && traits {
		n++
	}
	return n
}
