package broker

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// ErrStoreInUse is returned when another process already runs an embedded
// server on the same store: two servers writing one store would corrupt it.
var ErrStoreInUse = errors.New("store is in use by another chattap")

// lockStore takes an exclusive advisory lock on dir, creating it if needed.
// The lock goes away with the process, so a crash never leaves it behind.
func lockStore(dir string) (*os.File, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("store %s: %w", dir, err)
	}
	f, err := os.OpenFile(filepath.Join(dir, "chattap.lock"), os.O_CREATE|os.O_RDWR, 0o640)
	if err != nil {
		return nil, fmt.Errorf("store %s: %w", dir, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: %s (stop it, or let it listen with CHATTAP_NATS_LISTEN and reach it with CHATTAP_NATS_URL)", ErrStoreInUse, dir)
		}
		return nil, fmt.Errorf("lock store %s: %w", dir, err)
	}
	return f, nil
}
