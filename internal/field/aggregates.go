package field

import (
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"ecogrid/internal/field/blob"
	"ecogrid/internal/ledger"
	"ecogrid/internal/waters"
	"ecogrid/internal/zones"
)

// Reports files, reads, lists and exports reports and keeps the category
// taxonomy. A violation's event and accountability record are written in
// the report's transaction (group-committed with the county's other
// violations at hand).
type Reports struct {
	pool    *pgxpool.Pool
	locator Locator
	cfg     Config
	log     *slog.Logger
	now     func() time.Time
	metrics *metrics
	// reaches and chiefs name the river and reservoir chiefs (河长) of the
	// reaches near a violation beside the cell's people; nil: none.
	reaches *waters.Index
	chiefs  *waters.Store
	// zones says which protected zones contain a report; nil: none.
	zones *zones.Index
	// knownCategories caches "county/code" of categories seen to exist.
	knownCategories sync.Map
	// violations group-commits violations of one county: their reports,
	// outbox events and ledger records in one transaction per batch.
	violations *ledger.Committer
}

// Patrols starts and ends patrols and stores their tracks exactly once.
type Patrols struct {
	pool    *pgxpool.Pool
	locator Locator
	cfg     Config
	now     func() time.Time
	metrics *metrics
}

// Photos receives resumable uploads, serves downloads to whoever may see
// a photo, and cleans abandoned uploads.
type Photos struct {
	pool    *pgxpool.Pool
	blobs   blob.Store
	cfg     Config
	log     *slog.Logger
	now     func() time.Time
	metrics *metrics
}

// Compliance answers how many qualifying patrols each inspector did
// against what their cells' tasks ask.
type Compliance struct {
	pool *pgxpool.Pool
}

// Field is the field context as gridd wires it: one value per aggregate,
// built from the same dependencies. Its methods are those of the
// aggregates.
type Field struct {
	*Reports
	*Patrols
	*Photos
	*Compliance
	cfg Config
}

// Deps are the collaborators of Field, wired in cmd/gridd.
type Deps struct {
	Pool    *pgxpool.Pool
	Locator Locator
	Blobs   blob.Store
	Logger  *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Metrics receives the field counters; nil keeps them unregistered.
	Metrics prometheus.Registerer
	// Reaches attaches every report to the river and reservoir reaches
	// within ReachBufferM of it; Chiefs adds the chiefs of those reaches to
	// the people responsible for a violation (issue 17).
	Reaches *waters.Index
	Chiefs  *waters.Store
	// Zones, when set, stores with every report the protected zones
	// containing it and applies their county's rules (issue 18).
	Zones *zones.Index
}

// New returns the field domain. Every dependency is required.
func New(deps Deps, cfg Config) (*Field, error) {
	switch {
	case deps.Pool == nil:
		return nil, errors.New("field: database pool is required")
	case deps.Locator == nil:
		return nil, errors.New("field: grid locator is required")
	case deps.Blobs == nil:
		return nil, errors.New("field: blob store is required")
	}
	cfg = cfg.withDefaults()
	log, now := deps.Logger, deps.Now
	if log == nil {
		log = slog.Default()
	}
	if now == nil {
		now = time.Now
	}
	m := newMetrics(deps.Metrics)
	rs := &Reports{pool: deps.Pool, locator: deps.Locator, cfg: cfg, log: log, now: now, metrics: m, reaches: deps.Reaches, chiefs: deps.Chiefs, zones: deps.Zones,
		violations: ledger.NewCommitter(deps.Pool, ledger.CommitterConfig{})}
	return &Field{
		Reports:    rs,
		Patrols:    &Patrols{pool: deps.Pool, locator: deps.Locator, cfg: cfg, now: now, metrics: m},
		Photos:     &Photos{pool: deps.Pool, blobs: deps.Blobs, cfg: cfg, log: log, now: now, metrics: m},
		Compliance: &Compliance{pool: deps.Pool},
		cfg:        cfg,
	}, nil
}

// Config returns the effective configuration.
func (f *Field) Config() Config { return f.cfg }
