package spec_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/chattap/chattap/spec"
)

func ExampleRawPartitionSubject() {
	p := spec.Partition("chatbot::258:a56785fb6fb84edd890905913b0c0821")
	fmt.Println(p)
	fmt.Println(spec.RawPartitionSubject(p, spec.SourceChatbotWebhook, "message"))
	fmt.Println(spec.RawPartitionFilter(p))
	// Output:
	// 8
	// chattap.raw.8.chatbot.webhook.message
	// chattap.raw.8.>
}

func TestPartitionIsStableAndSpread(t *testing.T) {
	// Pinned values: a change to the hash would move live conversations
	// to another partition and another owner.
	for id, want := range map[string]int{"": 5, "a": 12} {
		if got := spec.Partition(id); got != want {
			t.Errorf("Partition(%q) = %d, want %d", id, got, want)
		}
	}
	var counts [spec.RawPartitions]int
	const n = 16000
	for i := range n {
		counts[spec.Partition(fmt.Sprintf("chatbot::%d:%x", i, i*7919))]++
	}
	for p, c := range counts {
		if c < n/spec.RawPartitions/2 || c > n/spec.RawPartitions*2 {
			t.Errorf("partition %d holds %d of %d conversations: the hash does not spread", p, c, n)
		}
	}
}

func TestPartitionSubjectsNeverMatchLegacyFilters(t *testing.T) {
	for p := range spec.RawPartitions {
		for _, src := range spec.Sources {
			subj := spec.RawPartitionSubject(p, src, "message")
			if !strings.HasPrefix(subj, strings.TrimSuffix(spec.RawPartitionFilter(p), ">")) {
				t.Errorf("%s is outside its filter %s", subj, spec.RawPartitionFilter(p))
			}
			for _, f := range spec.RawLegacyFilters {
				if strings.HasPrefix(subj, strings.TrimSuffix(f, ">")) {
					t.Errorf("%s matches the legacy filter %s", subj, f)
				}
			}
		}
	}
}
