package broker_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chattap/chattap/broker"
	"github.com/nats-io/nkeys"
)

func TestCredentialsValidateNamesEachVariable(t *testing.T) {
	for _, tc := range []struct {
		name  string
		c     broker.Credentials
		want  []string
		auths bool
	}{
		{"none", broker.Credentials{}, nil, false},
		{"user and password", broker.Credentials{User: "u", Password: "p"}, nil, true},
		{"user alone", broker.Credentials{User: "u"}, []string{"CHATTAP_NATS_USER and CHATTAP_NATS_PASSWORD"}, false},
		{"password alone", broker.Credentials{Password: "p"}, []string{"CHATTAP_NATS_USER and CHATTAP_NATS_PASSWORD"}, false},
		{"cert without key", broker.Credentials{TLSCert: "/nonexistent/c.pem"}, []string{"CHATTAP_NATS_TLS_CERT and CHATTAP_NATS_TLS_KEY", "CHATTAP_NATS_TLS_CERT:"}, false},
		{"missing seed file", broker.Credentials{NkeySeedFile: "/nonexistent/seed"}, []string{"CHATTAP_NATS_NKEY_SEED_FILE:"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.c.Validate()
			if len(tc.want) == 0 && err != nil {
				t.Errorf("Validate: %v", err)
			}
			for _, w := range tc.want {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Errorf("Validate: %v, want it to name %s", err, w)
				}
			}
			if err != nil && tc.c.Password != "" && strings.Contains(err.Error(), tc.c.Password+" ") {
				t.Errorf("the error shows the password: %v", err)
			}
			if got := tc.c.Authenticates(); got != tc.auths {
				t.Errorf("Authenticates = %v, want %v", got, tc.auths)
			}
		})
	}
}

func TestEmbeddedRequiresItsNkey(t *testing.T) {
	kp, _ := nkeys.CreateUser()
	seed, _ := kp.Seed()
	file := filepath.Join(t.TempDir(), "seed.nk")
	if err := os.WriteFile(file, seed, 0o600); err != nil {
		t.Fatal(err)
	}
	emb, err := broker.StartEmbedded(broker.EmbeddedOptions{StoreDir: t.TempDir(), Auth: broker.Credentials{NkeySeedFile: file}})
	if err != nil {
		t.Fatal(err)
	}
	defer emb.Shutdown()
	nc, err := emb.Connect("test")
	if err != nil {
		t.Fatalf("in-process connection with the server's own nkey: %v", err)
	}
	nc.Close()

	bad := filepath.Join(t.TempDir(), "bad.nk")
	_ = os.WriteFile(bad, []byte("not a seed"), 0o600)
	if _, err := broker.StartEmbedded(broker.EmbeddedOptions{StoreDir: t.TempDir(), Auth: broker.Credentials{NkeySeedFile: bad}}); err == nil || !strings.Contains(err.Error(), "CHATTAP_NATS_NKEY_SEED_FILE") {
		t.Errorf("a bad seed file: %v, want an error naming CHATTAP_NATS_NKEY_SEED_FILE", err)
	}
}
