package password

import (
	"errors"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

// cpuTime is the process's user+system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func TestHashVerify(t *testing.T) {
	h := NewHasher(Default, 0)
	enc, err := h.Hash("correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(enc, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Fatalf("encoded hash %q does not carry the OWASP parameters", enc)
	}
	if rehash, err := h.Verify("correct horse battery", enc); err != nil || rehash {
		t.Fatalf("Verify(right password) = %v, %v; want ok without rehash", rehash, err)
	}
	if _, err := h.Verify("correct horse batterY", enc); !errors.Is(err, ErrMismatch) {
		t.Fatalf("Verify(wrong password) = %v; want ErrMismatch", err)
	}
	enc2, _ := h.Hash("correct horse battery")
	if enc2 == enc {
		t.Fatal("two hashes of one password are equal: the salt is not random")
	}
}

func TestVerifyFlagsOldParameters(t *testing.T) {
	old := NewHasher(Params{MemoryKiB: 8 * 1024, Iterations: 1, Parallelism: 1, SaltLen: 16, KeyLen: 32}, 1)
	enc, err := old.Hash("an older password")
	if err != nil {
		t.Fatal(err)
	}
	rehash, err := NewHasher(Default, 1).Verify("an older password", enc)
	if err != nil || !rehash {
		t.Fatalf("Verify of a weaker hash = %v, %v; want ok and needsRehash", rehash, err)
	}
}

func TestVerifyRefusesHostileHashes(t *testing.T) {
	h := NewHasher(Default, 1)
	for _, enc := range []string{
		"",
		"$2a$10$abcdefghijklmnopqrstuv",
		"$argon2i$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2g",
		"$argon2id$v=19$m=4194304,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2g", // 4 GiB
		"$argon2id$v=19$m=19456,t=1000,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2g",
		"$argon2id$v=19$m=19456,t=2,p=0$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2g",
		"$argon2id$v=16$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2g",
		"$argon2id$v=19$m=19456,t=2,p=1$!!$aGFzaGhhc2hoYXNoaGFzaGhhc2g",
	} {
		if _, err := h.Verify("whatever password", enc); err == nil || errors.Is(err, ErrMismatch) {
			t.Errorf("Verify with hash %q = %v; want an unusable-hash error", enc, err)
		}
	}
}

func TestBurnFails(t *testing.T) {
	// Burn must never accept anything; it exists to equalise timing.
	h := NewHasher(Default, 1)
	if _, err := h.Verify("", dummy); !errors.Is(err, ErrMismatch) {
		t.Fatalf("dummy hash verified an empty password: %v", err)
	}
}

func TestCheckPolicy(t *testing.T) {
	for pw, ok := range map[string]bool{
		"short":                       false,
		"ten chars!":                  true,
		"网格员巡查密码十个字符":                 true,
		strings.Repeat("x", MaxLen+1): false,
		"\xff\xfe invalid utf8 text":  false,
	} {
		if err := CheckPolicy(pw); (err == nil) != ok {
			t.Errorf("CheckPolicy(%q) = %v; want ok=%v", pw, err, ok)
		}
	}
}

// BenchmarkVerify measures one login's argon2id cost at the default
// parameters. With b.RunParallel on GOMAXPROCS cores the reported ns/op is
// wall time per login at full load, so logins/s = 1e9 / ns/op.
func BenchmarkVerify(b *testing.B) {
	h := NewHasher(Default, 0)
	enc, err := h.Hash("benchmark password")
	if err != nil {
		b.Fatal(err)
	}
	b.Run("serial", func(b *testing.B) {
		// CPU time per hash, which (unlike wall time) does not grow when
		// other processes share the cores: 2 cores allow 2e9/cpu-ns logins/s.
		start := cpuTime()
		for b.Loop() {
			if _, err := h.Verify("benchmark password", enc); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/op")
		b.ReportMetric(2e9*float64(b.N)/float64(cpuTime()-start), "logins/s@2cores")
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportMetric(float64(runtime.GOMAXPROCS(0)), "cores")
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := h.Verify("benchmark password", enc); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}
