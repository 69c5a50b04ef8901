package blob_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"testing"

	"github.com/google/uuid"

	"ecogrid/internal/field/blob"
	"ecogrid/internal/field/blob/s3test"
)

// BenchmarkStore stores (partial file → Promote) and reads back (Open,
// which on S3 includes the hash check) one photo per iteration, on the
// local folder and on versitygw over loopback, in the same run:
//
//	go test -run '^$' -bench BenchmarkStore ./internal/field/blob/
func BenchmarkStore(b *testing.B) {
	ctx := context.Background()
	srv := s3test.Start(b)
	fsStore, err := blob.NewFS(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	s3Store, err := blob.NewS3(ctx, srv.Config("bench"), b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	for _, size := range []int{1 << 20, 5 << 20} {
		for _, st := range []struct {
			name  string
			store blob.Store
		}{{"fs", fsStore}, {"s3", s3Store}} {
			b.Run(fmt.Sprintf("%s/%dMiB", st.name, size>>20), func(b *testing.B) {
				data := make([]byte, size)
				b.SetBytes(int64(size))
				for b.Loop() {
					rand.Read(data)
					id := uuid.NewString()
					p, _, err := st.store.OpenPartial(ctx, id, 0)
					if err != nil {
						b.Fatal(err)
					}
					p.WriteAt(data, 0)
					if err := p.Sync(); err != nil {
						b.Fatal(err)
					}
					p.Close()
					sum := hexSum(data)
					if err := st.store.Promote(ctx, id, sum); err != nil {
						b.Fatal(err)
					}
					r, err := st.store.Open(ctx, sum)
					if err != nil {
						b.Fatal(err)
					}
					got, _ := io.ReadAll(r)
					r.Close()
					if !bytes.Equal(got, data) {
						b.Fatal("read back other bytes")
					}
				}
			})
		}
	}
}
