package grid

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	ecogridv1 "ecogrid/api/ecogrid/v1"
	"ecogrid/internal/structerr"
)

// ImportGeoJSON implements GridService: the header, then the file's bytes
// in chunks, piped into the parser as they arrive so that a large file is
// never held twice; the whole import is one transaction.
func (s *Service) ImportGeoJSON(stream ecogridv1.GridService_ImportGeoJSONServer) error {
	ctx := stream.Context()
	c, err := callerFrom(ctx)
	if err != nil {
		return err
	}
	if !c.HasRole(writers...) {
		return structerr.NewPermissionDenied("only the county grid office may import boundaries")
	}
	first, err := stream.Recv()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return structerr.NewInvalidArgument("the stream is empty: send the header, then the file")
		}
		return err
	}
	h := first.GetHeader()
	if h == nil {
		return structerr.NewInvalidArgument("the first message must be the header")
	}
	var sourceSRID int
	if crs := h.GetSourceCrs(); crs != "" {
		srid, err := ParseCRS(crs)
		if err != nil {
			return structerr.NewInvalidArgument("source_crs: %v", err)
		}
		sourceSRID = srid
	}
	pr, pw := io.Pipe()
	var received int64
	done := make(chan error, 1)
	go func() {
		done <- func() error {
			for {
				msg, err := stream.Recv()
				if errors.Is(err, io.EOF) {
					return pw.Close()
				}
				if err != nil {
					pw.CloseWithError(err)
					return err
				}
				chunk := msg.GetChunk()
				if msg.GetHeader() != nil {
					err := structerr.NewInvalidArgument("only the first message may be a header")
					pw.CloseWithError(err)
					return err
				}
				received += int64(len(chunk))
				if received > s.cfg.MaxImportBytes {
					pw.CloseWithError(errImportTooLarge)
					return errImportTooLarge
				}
				if _, err := pw.Write(chunk); err != nil {
					return nil // the parser stopped reading: it has its answer
				}
			}
		}()
	}()
	start := time.Now()
	opts := ImportOptions{
		Level:         Level(h.GetLevel()),
		DryRun:        h.GetDryRun(),
		EffectiveFrom: timeOrZero(h.GetEffectiveTime()),
		ReplaceUnder:  h.GetReplaceUnderCode(),
		SourceSRID:    sourceSRID,
		MayWrite:      func(code string) bool { return c.Covers(code, writers...) },
	}
	// The grant recorded is the caller's broadest writing grant (an import
	// may span townships); the county is checked per feature by MayWrite.
	code := ""
	if roots := c.Roots(writers...); len(roots) > 0 {
		code = roots[0]
	}
	setActor(&opts, c, code)
	res, err := s.store.ImportGeoJSON(ctx, pr, opts)
	pr.CloseWithError(io.ErrClosedPipe) // unblock the reader if the parser stopped early
	readErr := <-done
	switch {
	case errors.Is(readErr, errImportTooLarge):
		return structerr.NewInvalidArgument("the file is larger than the import limit of %d MiB; split it by township", s.cfg.MaxImportBytes>>20)
	case readErr != nil && ctx.Err() != nil:
		return ctx.Err()
	case readErr != nil && !errors.Is(readErr, io.EOF):
		return readErr
	}
	if err != nil {
		s.log.InfoContext(ctx, "grid import refused", slog.String("file", h.GetFileName()), slog.Int64("bytes", received), slog.String("error", firstLine(err.Error())))
		return err
	}
	s.log.InfoContext(ctx, "grid import done", slog.String("file", h.GetFileName()), slog.Int64("bytes", received),
		slog.Int("created", res.Created), slog.Int("updated", res.Updated), slog.Int("unchanged", res.Unchanged),
		slog.Int("retired", res.Retired), slog.Int("warnings", len(res.Warnings)), slog.Bool("dry_run", res.DryRun), slog.Duration("took", time.Since(start)))
	return stream.SendAndClose(&ecogridv1.ImportGeoJSONResponse{
		Created: int32(res.Created), Updated: int32(res.Updated), Unchanged: int32(res.Unchanged), Retired: int32(res.Retired),
		Warnings: problemsProto(res.Warnings), DryRun: res.DryRun, BytesReceived: received,
	})
}

func firstLine(s string) string {
	if i := bytes.IndexByte([]byte(s), '\n'); i >= 0 {
		return s[:i]
	}
	if len(s) > 300 {
		return s[:300] + "…"
	}
	return s
}

// exportChunk is the size of one ExportGeoJSON message.
const exportChunk = 256 << 10

// ExportGeoJSON implements GridService, streaming from the database.
func (s *Service) ExportGeoJSON(req *ecogridv1.ExportGeoJSONRequest, stream ecogridv1.GridService_ExportGeoJSONServer) error {
	ctx := stream.Context()
	c, err := callerFrom(ctx)
	if err != nil {
		return err
	}
	root, err := s.rootFor(ctx, c, req.GetNodeId())
	if err != nil {
		return err
	}
	q := SubtreeQuery{RootCode: root, MaxLevel: Level(req.GetMaxLevel()), WithGeometry: true}
	if at := req.GetAtTime(); at != nil {
		t := at.AsTime()
		q.AsOf = &t
	}
	var buf bytes.Buffer
	buf.WriteString(FeatureCollectionHeader)
	sent := 0
	flush := func(force bool) error {
		if buf.Len() < exportChunk && !force {
			return nil
		}
		if err := stream.Send(&ecogridv1.ExportGeoJSONResponse{Chunk: bytes.Clone(buf.Bytes()), FeaturesSent: int32(sent)}); err != nil {
			return err
		}
		buf.Reset()
		return nil
	}
	err = s.store.Subtree(ctx, q, func(n *Node) error {
		b, err := FeatureJSON(n)
		if err != nil {
			return fmt.Errorf("exporting %s: %w", n.Code, err)
		}
		if sent > 0 {
			buf.WriteString(",\n")
		}
		buf.Write(b)
		sent++
		return flush(false)
	})
	if err != nil {
		return err
	}
	if sent == 0 {
		return structerr.NewNotFound("nothing to export under %s", root)
	}
	buf.WriteString(FeatureCollectionFooter)
	return flush(true)
}
