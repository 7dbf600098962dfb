package ingest_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/chattap/chattap/broker"
	"github.com/chattap/chattap/ingest"
	"github.com/chattap/chattap/metrics"
	"github.com/chattap/chattap/spec"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// smallEmbedded is an embedded broker whose max_payload is 64 KiB, with
// the streams declared.
func smallEmbedded(t *testing.T) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	emb, err := broker.StartEmbedded(broker.EmbeddedOptions{StoreDir: t.TempDir(), MaxPayload: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(emb.Shutdown)
	nc, err := emb.Connect("test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, _ := jetstream.New(nc)
	if err := broker.Ensure(t.Context(), js, broker.StreamOptions{}); err != nil {
		t.Fatal(err)
	}
	return nc, js
}

// smallBroker is smallEmbedded with a started publisher on it.
func smallBroker(t *testing.T) (*nats.Conn, jetstream.JetStream, *ingest.Publisher, *metrics.Registry) {
	t.Helper()
	nc, js := smallEmbedded(t)
	reg := metrics.New()
	return nc, js, startPublisher(t, nc, time.Second, reg), reg
}

// startPublisher starts a publisher on nc (buffer 1000, window 64), stopped
// when the test ends.
func startPublisher(t *testing.T, nc *nats.Conn, ackTimeout time.Duration, reg *metrics.Registry) *ingest.Publisher {
	t.Helper()
	pub, err := ingest.NewPublisher(nc, 1000, 64, ackTimeout, slog.New(slog.DiscardHandler), metrics.NewIngest(reg))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = pub.Stop(ctx)
	})
	return pub
}

// manyEvents is the record of one exchange whose answer held n tiny events
// (a bot reply like [1,1,1,...]: each element is an undecodable event).
func manyEvents(id, cid string, n int) *spec.Record {
	obs := []*spec.Observation{{Source: spec.SourceChatbotWebhook, Kind: "message", ConversationID: cid, Payload: []byte(`{"info":{"cid":"` + cid + `"}}`)}}
	for range n {
		obs = append(obs, &spec.Observation{Source: spec.SourceChatbotReply, Kind: spec.KindUndecodable, Error: "not an object", PayloadRaw: []byte("1")})
	}
	return spec.NewRecord(id, time.Now(), 200, obs)
}

func oneEvent(id, cid, payload string) *spec.Record {
	return spec.NewRecord(id, time.Now(), 200, []*spec.Observation{{Source: spec.SourceChatbotWebhook, Kind: "message", ConversationID: cid, Payload: []byte(payload)}})
}

// enqueueAndWait enqueues rec and returns what its done callback said.
func enqueueAndWait(t *testing.T, pub *ingest.Publisher, rec *spec.Record) error {
	t.Helper()
	done := make(chan error, 1)
	if err := pub.Enqueue(rec, func(err error) { done <- err }); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		return err
	case <-time.After(5 * time.Second):
		t.Fatalf("record %s not settled after 5s (held %d)", rec.ID, pub.Held())
		return nil
	}
}

// TestRecordOfManyEventsIsCollapsed: an answer of so many events that the
// record is too large even with every payload left out is stored as the
// caller's event and one undecodable event that counts them, and the
// records after it are stored too (before, it was resent for ever).
func TestRecordOfManyEventsIsCollapsed(t *testing.T) {
	_, js, pub, _ := smallBroker(t)
	if err := enqueueAndWait(t, pub, manyEvents("many-0001", "conv-a", 1000)); err != nil {
		t.Fatalf("record of 1000 events: %v", err)
	}
	if err := enqueueAndWait(t, pub, oneEvent("good-0001", "conv-b", `{}`)); err != nil {
		t.Fatalf("later record: %v", err)
	}
	h := &harness{js: js}
	recs := h.records(t, 3)
	if recs[0].msgID != "many-0001" || recs[1].msgID != "good-0001" {
		t.Fatalf("stored %s, %s", recs[0].msgID, recs[1].msgID)
	}
	obs := recs[0].obs
	if len(obs) != 2 || string(obs[0].Payload) != `{"info":{"cid":"conv-a"}}` {
		t.Fatalf("collapsed record: %+v", obs)
	}
	if got := obs[1]; got.Kind != spec.KindUndecodable || got.Source != spec.SourceChatbotReply || !strings.Contains(got.Error, "1000 events") {
		t.Errorf("summary event: %+v", got)
	}
}

// TestEncodeOversizedRecordIsLinear: sizing a record too large for the
// broker costs in proportion to the record, not to its events times its
// size (it was encoded again after each payload left out). It counts the
// bytes Enqueue allocates, not time: four times the events must not cost
// much more than four times the bytes.
func TestEncodeOversizedRecordIsLinear(t *testing.T) {
	_, _, pub, _ := smallBroker(t)
	allocated := func(n int) uint64 {
		rec := manyEvents(fmt.Sprintf("lin-%d", n), "c", n)
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		if err := pub.Enqueue(rec, nil); err != nil {
			t.Fatal(err)
		}
		runtime.ReadMemStats(&after)
		return after.TotalAlloc - before.TotalAlloc
	}
	small, large := allocated(2000), allocated(8000)
	t.Logf("Enqueue allocated %d bytes for 2000 events, %d for 8000", small, large)
	if large > 8*small {
		t.Errorf("4x the events allocated %.1fx the bytes: encode is not linear", float64(large)/float64(small))
	}
}

// TestRecordRefusedForSizeIsDropped: a stream whose max_msg_size is below
// the connection's max_payload refuses a record that encode let through.
// No resend can cure that: the record is dropped, reported as ErrTooLarge
// and counted as lost, and the records after it are stored.
func TestRecordRefusedForSizeIsDropped(t *testing.T) {
	_, js, pub, reg := smallBroker(t)
	st, err := js.Stream(t.Context(), spec.StreamRaw)
	if err != nil {
		t.Fatal(err)
	}
	cfg := st.CachedInfo().Config
	cfg.MaxMsgSize = 8 << 10
	if _, err := js.UpdateStream(t.Context(), cfg); err != nil {
		t.Fatal(err)
	}
	big := oneEvent("big-0001", "conv-a", `"`+strings.Repeat("x", 16<<10)+`"`)
	if err := enqueueAndWait(t, pub, big); !errors.Is(err, ingest.ErrTooLarge) {
		t.Errorf("record over the stream's max_msg_size: %v, want ErrTooLarge", err)
	}
	if err := enqueueAndWait(t, pub, oneEvent("good-0001", "conv-a", `{}`)); err != nil {
		t.Fatalf("later record: %v", err)
	}
	if n := reg.Gather("chattap_records_lost_total", nil); n != 1 {
		t.Errorf("lost counted %v, want 1", n)
	}
	h := &harness{js: js}
	if recs := h.records(t, 1); recs[0].msgID != "good-0001" {
		t.Errorf("stored %s", recs[0].msgID)
	}
}
