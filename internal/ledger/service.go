package ledger

import (
	"context"
	"log/slog"
	"strconv"
	"time"

	"golang.org/x/mod/sumdb/note"
	"google.golang.org/protobuf/types/known/timestamppb"

	ecogridv1 "ecogrid/api/ecogrid/v1"
	"ecogrid/internal/pagetoken"
	"ecogrid/internal/scope"
	"ecogrid/internal/structerr"
)

// Service is the AccountabilityService: the county office reads, verifies
// and exports the ledger of its own county.
type Service struct {
	ecogridv1.UnimplementedAccountabilityServiceServer
	ledger *Ledger
	logger *slog.Logger
	names  Names
}

// Names looks up the display names of the people and grid nodes a record
// cites by id and code, so that a history reads "张三 (村网格员, 南关村)"
// and not only UUIDs and 12-digit codes. The ledger lies below grid and
// people, so the binary wires their Go API in (gridd). An unknown id or
// code has the name "".
type Names interface {
	PersonName(ctx context.Context, id string) (string, error)
	NodeName(ctx context.Context, code string) (string, error)
}

// WithNames makes the histories carry names beside codes.
func (s *Service) WithNames(n Names) *Service {
	s.names = n
	return s
}

var _ ecogridv1.AccountabilityServiceServer = (*Service)(nil)

// NewService returns the AccountabilityService over l.
func NewService(l *Ledger, logger *slog.Logger) *Service {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Service{ledger: l, logger: logger}
}

// auditor returns the caller if they may audit at all: a county officer
// or an administrator.
func auditor(ctx context.Context) (scope.Caller, error) {
	c, ok := scope.FromContext(ctx)
	if !ok {
		return c, structerr.NewUnauthenticated("sign in to read the accountability ledger")
	}
	if !c.HasRole(scope.RoleCountyOfficer) {
		return c, structerr.NewPermissionDenied("the accountability ledger is open to the county office only")
	}
	return c, nil
}

// chainFor checks that the caller audits the county; outside → NotFound.
func chainFor(ctx context.Context, county string) (scope.Caller, error) {
	c, err := auditor(ctx)
	if err != nil {
		return c, err
	}
	if !validCountyCode(county) {
		return c, structerr.NewInvalidArgument("a ledger chain is named by a 6-digit county code, not %.40q", county)
	}
	if !c.Covers(county, scope.RoleCountyOfficer) {
		return c, structerr.NewNotFound("no ledger for county %s", county)
	}
	return c, nil
}

func historyQuery(c scope.Caller, f *ecogridv1.HistoryFilter, p *ecogridv1.PageRequest) (HistoryQuery, error) {
	q := HistoryQuery{Scope: c.Roots(scope.RoleCountyOfficer)}
	if f != nil {
		q.Actions = f.GetActions()
		q.From, q.To = timeOrZero(f.GetFromTime()), timeOrZero(f.GetToTime())
	}
	if p.GetPageSize() < 0 {
		return q, structerr.NewInvalidArgument("page size cannot be negative")
	}
	q.Limit = int(p.GetPageSize())
	var err error
	q.After, err = ParseCursor(p.GetPageToken())
	return q, err
}

// PersonHistory implements AccountabilityService.
func (s *Service) PersonHistory(ctx context.Context, req *ecogridv1.PersonHistoryRequest) (*ecogridv1.PersonHistoryResponse, error) {
	c, err := auditor(ctx)
	if err != nil {
		return nil, err
	}
	q, err := historyQuery(c, req.GetFilter(), req.GetPage())
	if err != nil {
		return nil, err
	}
	recs, next, err := s.ledger.PersonHistory(ctx, req.GetPersonId(), q)
	if err != nil {
		return nil, err
	}
	out, err := s.recordsProto(ctx, recs)
	if err != nil {
		return nil, err
	}
	return &ecogridv1.PersonHistoryResponse{Records: out, NextPageToken: next.Token()}, nil
}

// NodeHistory implements AccountabilityService.
func (s *Service) NodeHistory(ctx context.Context, req *ecogridv1.NodeHistoryRequest) (*ecogridv1.NodeHistoryResponse, error) {
	c, err := auditor(ctx)
	if err != nil {
		return nil, err
	}
	code := req.GetNodeCode()
	if len(code) < 6 || !isDigits(code) {
		return nil, structerr.NewInvalidArgument("%.40q is not a grid code", code)
	}
	if !c.Covers(code, scope.RoleCountyOfficer) {
		return nil, structerr.NewNotFound("no grid node %s", code)
	}
	q, err := historyQuery(c, req.GetFilter(), req.GetPage())
	if err != nil {
		return nil, err
	}
	recs, next, err := s.ledger.NodeHistory(ctx, code, q)
	if err != nil {
		return nil, err
	}
	out, err := s.recordsProto(ctx, recs)
	if err != nil {
		return nil, err
	}
	return &ecogridv1.NodeHistoryResponse{Records: out, NextPageToken: next.Token()}, nil
}

// SubjectHistory implements AccountabilityService.
func (s *Service) SubjectHistory(ctx context.Context, req *ecogridv1.SubjectHistoryRequest) (*ecogridv1.SubjectHistoryResponse, error) {
	c, err := auditor(ctx)
	if err != nil {
		return nil, err
	}
	q, err := historyQuery(c, req.GetFilter(), req.GetPage())
	if err != nil {
		return nil, err
	}
	recs, next, err := s.ledger.SubjectHistory(ctx, req.GetSubjectType(), req.GetSubjectId(), q)
	if err != nil {
		return nil, err
	}
	if len(recs) == 0 && req.GetPage().GetPageToken() == "" {
		return nil, structerr.NewNotFound("no ledger history for %s %s", req.GetSubjectType(), req.GetSubjectId())
	}
	out, err := s.recordsProto(ctx, recs)
	if err != nil {
		return nil, err
	}
	return &ecogridv1.SubjectHistoryResponse{Records: out, NextPageToken: next.Token()}, nil
}

// GetPublicKey implements AccountabilityService.
func (s *Service) GetPublicKey(ctx context.Context, _ *ecogridv1.GetPublicKeyRequest) (*ecogridv1.GetPublicKeyResponse, error) {
	if _, err := auditor(ctx); err != nil {
		return nil, err
	}
	k := s.ledger.Keys()
	resp := &ecogridv1.GetPublicKeyResponse{PublicKey: k.PublicKey(), TrustedPublicKeys: k.PublicKeys()}
	if k.PublicKey() != "" {
		if v, err := note.NewVerifier(k.PublicKey()); err == nil {
			resp.KeyName, resp.KeyId = v.Name(), v.KeyHash()
		}
	}
	return resp, nil
}

// ListCheckpoints implements AccountabilityService.
func (s *Service) ListCheckpoints(ctx context.Context, req *ecogridv1.ListCheckpointsRequest) (*ecogridv1.ListCheckpointsResponse, error) {
	if _, err := chainFor(ctx, req.GetCountyCode()); err != nil {
		return nil, err
	}
	var after int64
	if t := req.GetPage().GetPageToken(); t != "" {
		parts, err := pagetoken.Decode(t, 1)
		if err != nil {
			return nil, err
		}
		n, err := strconv.ParseInt(parts[0], 10, 64)
		if err != nil || n < 0 {
			return nil, pagetoken.ErrBad
		}
		after = n
	}
	limit := int(req.GetPage().GetPageSize())
	if limit <= 0 {
		limit = defaultPageSize
	}
	limit = min(limit, maxPageSize)
	cps, err := s.ledger.ListCheckpoints(ctx, req.GetCountyCode(), after, limit+1)
	if err != nil {
		return nil, err
	}
	resp := &ecogridv1.ListCheckpointsResponse{}
	if len(cps) > limit {
		cps = cps[:limit]
		resp.NextPageToken = pagetoken.Encode(strconv.FormatInt(cps[limit-1].Size, 10))
	}
	for i := range cps {
		resp.Checkpoints = append(resp.Checkpoints, checkpointProto(&cps[i]))
	}
	return resp, nil
}

// SignCheckpoint implements AccountabilityService.
func (s *Service) SignCheckpoint(ctx context.Context, req *ecogridv1.SignCheckpointRequest) (*ecogridv1.SignCheckpointResponse, error) {
	c, err := chainFor(ctx, req.GetCountyCode())
	if err != nil {
		return nil, err
	}
	cp, err := s.ledger.Checkpoint(ctx, req.GetCountyCode())
	if err != nil {
		return nil, err
	}
	s.logger.Info("ledger_checkpoint_requested", slog.String("county_code", cp.CountyCode), slog.Int64("size", cp.Size), slog.String("person_id", c.PersonID))
	return &ecogridv1.SignCheckpointResponse{Checkpoint: checkpointProto(&cp)}, nil
}

// VerifyChain implements AccountabilityService.
func (s *Service) VerifyChain(ctx context.Context, req *ecogridv1.VerifyChainRequest) (*ecogridv1.VerifyChainResponse, error) {
	c, err := chainFor(ctx, req.GetCountyCode())
	if err != nil {
		return nil, err
	}
	if len(req.GetKnownCheckpoints()) > 1000 {
		return nil, structerr.NewInvalidArgument("at most 1000 known checkpoints per request")
	}
	res, err := s.ledger.VerifyChain(ctx, req.GetCountyCode(), req.GetKnownCheckpoints())
	if err != nil {
		return nil, err
	}
	resp := &ecogridv1.VerifyChainResponse{Ok: res.OK(), Records: res.Records, Checkpoints: int32(res.Checkpoints), FirstBadSeq: -1}
	if res.Defect != nil {
		resp.FirstBadSeq, resp.Reason = res.Defect.Seq, res.Defect.Reason
		s.logger.Error("ledger_chain_verification_failed", slog.String("county_code", req.GetCountyCode()),
			slog.Int64("first_bad_seq", res.Defect.Seq), slog.String("reason", res.Defect.Reason), slog.String("person_id", c.PersonID))
	}
	if res.LastCheckpoint != nil {
		resp.LastCheckpoint = checkpointProto(res.LastCheckpoint)
	}
	return resp, nil
}

// Export implements AccountabilityService.
func (s *Service) Export(req *ecogridv1.ExportRequest, stream ecogridv1.AccountabilityService_ExportServer) error {
	c, err := chainFor(stream.Context(), req.GetCountyCode())
	if err != nil {
		return err
	}
	w := &chunkWriter{send: func(b []byte) error { return stream.Send(&ecogridv1.ExportResponse{Chunk: b}) }}
	if err := s.ledger.Export(stream.Context(), req.GetCountyCode(), w); err != nil {
		return err
	}
	s.logger.Info("ledger_exported", slog.String("county_code", req.GetCountyCode()), slog.Int64("bytes", w.n), slog.String("person_id", c.PersonID))
	return nil
}

// chunkWriter turns the export's writes into stream messages; Export's
// buffered writer hands it 64 KiB at a time.
type chunkWriter struct {
	send func([]byte) error
	n    int64
}

func (w *chunkWriter) Write(p []byte) (int, error) {
	for off := 0; off < len(p); off += 64 << 10 {
		end := min(off+64<<10, len(p))
		if err := w.send(append([]byte(nil), p[off:end]...)); err != nil {
			return off, err
		}
	}
	w.n += int64(len(p))
	return len(p), nil
}

// recordsProto converts records, with names beside codes when the service
// has Names (each id and code looked up once per page).
func (s *Service) recordsProto(ctx context.Context, rs []Record) ([]*ecogridv1.LedgerRecord, error) {
	people, nodes := map[string]string{}, map[string]string{}
	lookup := func(cache map[string]string, key string, find func(context.Context, string) (string, error)) (string, error) {
		if s.names == nil || key == "" {
			return "", nil
		}
		if name, ok := cache[key]; ok {
			return name, nil
		}
		name, err := find(ctx, key)
		if err != nil {
			return "", err
		}
		cache[key] = name
		return name, nil
	}
	person := func(id string) (string, error) {
		return lookup(people, id, func(ctx context.Context, id string) (string, error) { return s.names.PersonName(ctx, id) })
	}
	node := func(code string) (string, error) {
		return lookup(nodes, code, func(ctx context.Context, code string) (string, error) { return s.names.NodeName(ctx, code) })
	}
	out := make([]*ecogridv1.LedgerRecord, len(rs))
	for i := range rs {
		r := &rs[i]
		p := &ecogridv1.LedgerRecord{
			CountyCode: r.CountyCode, Seq: r.Seq, RecordedAt: timestamppb.New(r.RecordedAt),
			ActorId: r.ActorID, ActorRole: r.ActorRole, ActorNodeCode: r.ActorNodeCode, Action: r.Action,
			SubjectType: r.SubjectType, SubjectId: r.SubjectID, NodeCode: r.NodeCode,
			PayloadJson: string(r.Payload), PrevHash: r.PrevHash[:], LeafHash: r.LeafHash[:],
		}
		var err error
		if p.ActorName, err = person(r.ActorID); err != nil {
			return nil, err
		}
		if p.ActorNodeName, err = node(r.ActorNodeCode); err != nil {
			return nil, err
		}
		if p.NodeName, err = node(r.NodeCode); err != nil {
			return nil, err
		}
		for _, rp := range r.Responsible {
			lr := &ecogridv1.LedgerResponsible{PersonId: rp.PersonID, Name: rp.Name, Role: rp.Role, NodeCode: rp.NodeCode}
			if lr.NodeName, err = node(rp.NodeCode); err != nil {
				return nil, err
			}
			p.Responsible = append(p.Responsible, lr)
		}
		out[i] = p
	}
	return out, nil
}

func checkpointProto(c *Checkpoint) *ecogridv1.LedgerCheckpoint {
	p := &ecogridv1.LedgerCheckpoint{
		CountyCode: c.CountyCode, Size: c.Size, Root: append([]byte(nil), c.Root[:]...), KeyName: c.KeyName, KeyId: c.KeyID,
		Note: c.Note, PrevSize: c.PrevSize,
	}
	for _, h := range c.Proof {
		p.ConsistencyProof = append(p.ConsistencyProof, append([]byte(nil), h[:]...))
	}
	if !c.CreatedAt.IsZero() {
		p.CreateTime = timestamppb.New(c.CreatedAt)
	}
	return p
}

// timeOrZero converts an optional timestamp.
func timeOrZero(t *timestamppb.Timestamp) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.AsTime()
}
