package broker

import (
	"crypto/tls"
	"errors"
	"fmt"
	"os"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
)

// Credentials are how a chattap process proves itself to NATS and, for
// the embedded server, what it asks of others. The same variables serve
// both sides, so every process of a deployment is configured alike: the
// embedded server accepts the user and password and the public key of the
// nkey seed; a process that connects through CHATTAP_NATS_URL presents
// them. The zero value is no authentication, which is right only when
// nothing but this process can reach the server.
type Credentials struct {
	User     string `env:"CHATTAP_NATS_USER" help:"NATS user name; with CHATTAP_NATS_PASSWORD, required of every client by the embedded server, and presented to CHATTAP_NATS_URL"`
	Password string `env:"CHATTAP_NATS_PASSWORD" secret:"true" help:"NATS password of CHATTAP_NATS_USER"`
	// NkeySeedFile holds a user nkey seed (SU…): the embedded server
	// accepts its public key, a client signs the server's nonce with it.
	NkeySeedFile string `env:"CHATTAP_NATS_NKEY_SEED_FILE" help:"file holding a NATS user nkey seed (SU…): the embedded server accepts its public key; a client signs in with it"`
	// CredsFile is a .creds file (a user JWT and its seed) for a server in
	// operator mode; only for CHATTAP_NATS_URL.
	CredsFile string `env:"CHATTAP_NATS_CREDS_FILE" help:"NATS .creds file (user JWT and seed) presented to CHATTAP_NATS_URL, for servers in operator mode"`
	// TLSCert and TLSKey are the embedded server's certificate on
	// CHATTAP_NATS_LISTEN, or a client's certificate for CHATTAP_NATS_URL.
	TLSCert string `env:"CHATTAP_NATS_TLS_CERT" help:"PEM certificate: the embedded server's on CHATTAP_NATS_LISTEN (TLS required there), or this client's for CHATTAP_NATS_URL"`
	TLSKey  string `env:"CHATTAP_NATS_TLS_KEY" help:"PEM private key of CHATTAP_NATS_TLS_CERT"`
	// TLSCA verifies the other side: the server's certificate for a
	// client; for the embedded server, it makes client certificates
	// required and verified against it.
	TLSCA string `env:"CHATTAP_NATS_TLS_CA" help:"PEM CA: a client verifies the server with it; the embedded server then also requires client certificates signed by it"`
}

// Authenticates reports whether c names a way to authenticate clients:
// a user and password, or an nkey.
func (c Credentials) Authenticates() bool {
	return (c.User != "" && c.Password != "") || c.NkeySeedFile != ""
}

// Validate reports every inconsistent value, each with its variable.
func (c Credentials) Validate() error {
	var errs []error
	if (c.User == "") != (c.Password == "") {
		errs = append(errs, errors.New("CHATTAP_NATS_USER and CHATTAP_NATS_PASSWORD: set both or neither"))
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		errs = append(errs, errors.New("CHATTAP_NATS_TLS_CERT and CHATTAP_NATS_TLS_KEY: set both or neither"))
	}
	for _, f := range []struct{ env, path string }{
		{"CHATTAP_NATS_NKEY_SEED_FILE", c.NkeySeedFile}, {"CHATTAP_NATS_CREDS_FILE", c.CredsFile},
		{"CHATTAP_NATS_TLS_CERT", c.TLSCert}, {"CHATTAP_NATS_TLS_KEY", c.TLSKey}, {"CHATTAP_NATS_TLS_CA", c.TLSCA},
	} {
		if f.path == "" {
			continue
		}
		if _, err := os.Stat(f.path); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", f.env, err))
		}
	}
	return errors.Join(errs...)
}

// clientOptions are the nats.go options that present c to a server.
func (c Credentials) clientOptions() []nats.Option {
	var opts []nats.Option
	if c.User != "" {
		opts = append(opts, nats.UserInfo(c.User, c.Password))
	}
	if c.NkeySeedFile != "" {
		opt, err := nats.NkeyOptionFromSeed(c.NkeySeedFile)
		if err != nil {
			// Validate checked the file exists; a seed that does not parse
			// fails the connection with this error rather than silently
			// connecting without it.
			opts = append(opts, func(*nats.Options) error { return fmt.Errorf("CHATTAP_NATS_NKEY_SEED_FILE: %w", err) })
		} else {
			opts = append(opts, opt)
		}
	}
	if c.CredsFile != "" {
		opts = append(opts, nats.UserCredentials(c.CredsFile))
	}
	if c.TLSCA != "" {
		opts = append(opts, nats.RootCAs(c.TLSCA))
	}
	if c.TLSCert != "" {
		opts = append(opts, nats.ClientCert(c.TLSCert, c.TLSKey))
	}
	return opts
}

// inProcessOptions present c to the embedded server over the in-process
// connection, which carries no TLS: the user and password, else the nkey.
func (c Credentials) inProcessOptions() []nats.Option {
	switch {
	case c.User != "":
		return []nats.Option{nats.UserInfo(c.User, c.Password)}
	case c.NkeySeedFile != "":
		return Credentials{NkeySeedFile: c.NkeySeedFile}.clientOptions()
	}
	return nil
}

// configureServer makes opts require c of every client and serve TLS when
// c has a certificate.
func (c Credentials) configureServer(opts *server.Options) error {
	if c.User != "" {
		opts.Users = append(opts.Users, &server.User{Username: c.User, Password: c.Password})
	}
	if c.NkeySeedFile != "" {
		pub, err := nkeyPublic(c.NkeySeedFile)
		if err != nil {
			return err
		}
		opts.Nkeys = append(opts.Nkeys, &server.NkeyUser{Nkey: pub})
	}
	if c.TLSCert != "" {
		cfg, err := server.GenTLSConfig(&server.TLSConfigOpts{CertFile: c.TLSCert, KeyFile: c.TLSKey, CaFile: c.TLSCA, Verify: c.TLSCA != "", MinVersion: tls.VersionTLS12})
		if err != nil {
			return fmt.Errorf("CHATTAP_NATS_TLS_CERT: %w", err)
		}
		opts.TLSConfig, opts.TLS, opts.TLSVerify, opts.TLSTimeout = cfg, true, c.TLSCA != "", 2
	}
	return nil
}

// nkeyPublic reads a user nkey seed file (bare or decorated, as nsc writes
// it) and returns its public key.
func nkeyPublic(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("CHATTAP_NATS_NKEY_SEED_FILE: %w", err)
	}
	kp, err := nkeys.ParseDecoratedNKey(b)
	if err != nil {
		return "", fmt.Errorf("CHATTAP_NATS_NKEY_SEED_FILE: not an nkey seed: %w", err)
	}
	defer kp.Wipe()
	pub, err := kp.PublicKey()
	if err != nil {
		return "", fmt.Errorf("CHATTAP_NATS_NKEY_SEED_FILE: %w", err)
	}
	if !nkeys.IsValidPublicUserKey(pub) {
		return "", errors.New("CHATTAP_NATS_NKEY_SEED_FILE: not a user nkey seed (SU…)")
	}
	return pub, nil
}
