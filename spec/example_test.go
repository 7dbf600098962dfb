package spec_test

import (
	"fmt"

	"github.com/chattap/chattap/spec"
)

func ExampleRawSubject() {
	fmt.Println(spec.RawSubject(spec.SourceChatbotWebhook, "message"))
	fmt.Println(spec.RawSubject(spec.SourceAddon, "chat_session.end"))
	fmt.Println(spec.RawSubject(spec.SourceChatbotReply, "odd name.*>"))
	// Output:
	// chattap.raw.chatbot.webhook.message
	// chattap.raw.addon.chat_session.end
	// chattap.raw.chatbot.reply.odd_name.__
}

func ExampleEventSubject() {
	fmt.Println(spec.EventSubject(&spec.Message{Type: spec.TypeTrack, Event: spec.EventMessageSent}))
	fmt.Println(spec.EventSubject(&spec.Message{Type: spec.TypeIdentify}))
	// Output:
	// chattap.events.live_chat_message_sent
	// chattap.events.identify
}

func ExampleSplitEvents() {
	events, _ := spec.SplitEvents([]byte(`[{"packet":{"name":"message"}}, {}, {"packet":{"name":"end"}}]`))
	for _, e := range events {
		ev, _ := spec.DecodeChatbotEvent(e)
		fmt.Println(ev.Name(), string(e))
	}
	none, _ := spec.SplitEvents([]byte(`{}`))
	fmt.Println(len(none))
	// Output:
	// message {"packet":{"name":"message"}}
	// end {"packet":{"name":"end"}}
	// 0
}

func ExampleDecodeChannelMessage() {
	m, _ := spec.DecodeChannelMessage([]byte(`{"contact":{"email":"ada@example.com"},"message":{"text":"Hi","is_deleted":false}}`), spec.ChannelFields{})
	fmt.Println(m.Conversation(), m.Body, m.Deleted)
	custom, _ := spec.DecodeChannelMessage([]byte(`{"who":{"ref":42},"say":"Hello"}`), spec.ChannelFields{Contact: []string{"who.ref"}, Body: []string{"say"}})
	fmt.Println(custom.Conversation(), custom.Body)
	// Output:
	// channel::ada@example.com Hi false
	// channel::42 Hello
}

func ExampleParseDuration() {
	d, _ := spec.ParseDuration("01:02:03")
	fmt.Println(d.Seconds())
	// Output: 3723
}
