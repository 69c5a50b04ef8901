package field

import (
	"context"
	"errors"
	"io"

	"google.golang.org/grpc"

	ecogridv1 "ecogrid/api/ecogrid/v1"
	"ecogrid/internal/structerr"
)

// UploadPhoto implements FieldService. The stream's first message is the
// header; chunks follow. Whatever arrived before a dropped connection is
// kept; the response says where to resume when the stream ended early.
func (s *Service) UploadPhoto(stream grpc.ClientStreamingServer[ecogridv1.UploadPhotoRequest, ecogridv1.UploadPhotoResponse]) error {
	ctx := stream.Context()
	c, err := callerOf(ctx)
	if err != nil {
		return err
	}
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	h := first.GetHeader()
	if h == nil {
		return structerr.NewInvalidArgument("the first message of an upload must be its header")
	}
	u, err := s.photos.BeginUpload(ctx, c, UploadHeader{
		UploadID: h.GetUploadId(), ReportID: h.GetReportId(), Size: h.GetSize(), SHA256: h.GetSha256(), ContentType: h.GetContentType(),
	})
	if err != nil {
		return structerr.PrefixField(err, "header")
	}
	if st := u.Status(); st.Complete {
		// Stored already (this upload before, or the same photo by anyone).
		// An app that sends the header alone and closes learns it without
		// sending a byte; a chunk after completion is refused, and the app
		// asks GetUploadStatus.
		_, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return stream.SendAndClose(uploadResponse(st))
		}
		if err != nil {
			return err
		}
		return structerr.NewFailedPrecondition("upload %s is already complete", st.UploadID)
	}
	defer func() {
		if err := u.Close(ctx); err != nil {
			s.log.ErrorContext(ctx, "keeping upload progress failed", "upload_id", u.h.UploadID, "error", err)
		}
	}()
	for {
		msg, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			if err := u.Close(ctx); err != nil {
				return err
			}
			return stream.SendAndClose(uploadResponse(u.Status()))
		}
		if err != nil {
			return err
		}
		chunk := msg.GetChunk()
		if chunk == nil {
			return structerr.NewInvalidArgument("only chunks may follow the header")
		}
		st, err := u.Write(ctx, chunk.GetOffset(), chunk.GetData())
		if err != nil {
			return err
		}
		if st.Complete {
			return stream.SendAndClose(uploadResponse(st))
		}
	}
}

func uploadResponse(st UploadStatus) *ecogridv1.UploadPhotoResponse {
	out := &ecogridv1.UploadPhotoResponse{UploadId: st.UploadID, State: ecogridv1.UploadState_UPLOAD_STATE_PARTIAL,
		CommittedOffset: st.Committed, Photo: photoPB(st.Photo), ExifMismatch: st.ExifMismatch}
	if st.Complete {
		out.State = ecogridv1.UploadState_UPLOAD_STATE_COMPLETE
	}
	return out
}

// GetUploadStatus implements FieldService.
func (s *Service) GetUploadStatus(ctx context.Context, req *ecogridv1.GetUploadStatusRequest) (*ecogridv1.GetUploadStatusResponse, error) {
	c, err := callerOf(ctx)
	if err != nil {
		return nil, err
	}
	st, err := s.photos.UploadStatus(ctx, c, req.GetUploadId(), req.GetReportId(), req.GetSha256())
	if err != nil {
		return nil, err
	}
	r := uploadResponse(st)
	return &ecogridv1.GetUploadStatusResponse{UploadId: r.UploadId, State: r.State, CommittedOffset: r.CommittedOffset, Size: st.Size, Photo: r.Photo}, nil
}

// downloadChunk is the size of DownloadPhoto messages.
const downloadChunk = 256 << 10

// DownloadPhoto implements FieldService.
func (s *Service) DownloadPhoto(req *ecogridv1.DownloadPhotoRequest, stream grpc.ServerStreamingServer[ecogridv1.DownloadPhotoResponse]) error {
	ctx := stream.Context()
	c, err := callerOf(ctx)
	if err != nil {
		return err
	}
	meta, r, err := s.photos.OpenPhoto(ctx, c, req.GetSha256())
	if err != nil {
		return err
	}
	defer r.Close()
	buf := make([]byte, downloadChunk)
	off := int64(0)
	first := true
	for {
		n, err := io.ReadFull(r, buf)
		if n > 0 || first {
			msg := &ecogridv1.DownloadPhotoResponse{Offset: off, Data: buf[:n]}
			if first {
				msg.Photo = photoPB(&meta)
				first = false
			}
			if err := stream.Send(msg); err != nil {
				return err
			}
			off += int64(n)
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}
