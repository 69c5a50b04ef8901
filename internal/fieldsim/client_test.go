package fieldsim

import (
	"bytes"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"ecogrid/internal/coord"
	"ecogrid/internal/field/photo"
	"ecogrid/internal/grid/demo"
)

func TestCheckLoopback(t *testing.T) {
	for _, ok := range []string{"127.0.0.1:7443", "[::1]:7443", "localhost:7443", "127.1.2.3:1"} {
		if err := CheckLoopback(ok); err != nil {
			t.Errorf("CheckLoopback(%q) = %v, want nil", ok, err)
		}
	}
	for _, bad := range []string{"10.0.0.1:7443", "8.8.8.8:443", "0.0.0.0:7443", "[2001:db8::1]:7443", "127.0.0.1", ":7443", "gridd.example.invalid:7443"} {
		if err := CheckLoopback(bad); err == nil {
			t.Errorf("CheckLoopback(%q) = nil, want a refusal", bad)
		}
	}
	for _, ok := range []string{"postgres://postgres@127.0.0.1:5432/ecogrid?sslmode=disable", "postgres:///ecogrid?host=/var/run/postgresql", "postgresql://u@localhost/db"} {
		if err := CheckDatabaseLoopback(ok); err != nil {
			t.Errorf("CheckDatabaseLoopback(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"postgres://u@10.1.1.1/db", "postgres://u@db.example.invalid/db", "mysql://u@127.0.0.1/db", "postgres:///db?host=192.168.1.2"} {
		if err := CheckDatabaseLoopback(bad); err == nil {
			t.Errorf("CheckDatabaseLoopback(%q) = nil, want a refusal", bad)
		}
	}
}

func TestValidateRefusesNonLoopbackAndNonsense(t *testing.T) {
	c := DefaultConfig()
	c.AdminPassword = "x"
	c.DatabaseURL = "postgres://postgres@127.0.0.1:5432/ecogrid"
	if err := c.Validate(); err != nil {
		t.Fatalf("default config with a password: %v", err)
	}
	bad := c
	bad.CasedAddr = "192.0.2.7:7444"
	bad.Inspectors = 0
	bad.ViolationShare = 1.5
	bad.Name = "Bad Name"
	err := bad.Validate()
	if err == nil {
		t.Fatal("Validate accepted a remote cased, no inspectors, a share of 1.5 and a bad name")
	}
	for _, want := range []string{"192.0.2.7", "inspectors 0", "violation share 1.5", `name "Bad Name"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

// demoVillage returns the first village of the demo county as an area.
func demoVillage(t *testing.T) *area {
	t.Helper()
	for _, n := range demo.CountyNodes() {
		if n.Level != demo.LevelVillage {
			continue
		}
		var sb strings.Builder
		sb.WriteString(`{"type":"Polygon","coordinates":[[`)
		for i, p := range n.Ring {
			if i > 0 {
				sb.WriteByte(',')
			}
			sb.WriteString("[" + ftoa(p[0]) + "," + ftoa(p[1]) + "]")
		}
		sb.WriteString("]]}")
		a, err := parseArea(sb.String())
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	t.Fatal("demo county has no village")
	return nil
}

func ftoa(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

func TestWalkStaysInsideTheCell(t *testing.T) {
	a := demoVillage(t)
	r := rand.New(rand.NewPCG(1, 2))
	lon, lat := a.randomPoint(r)
	if !a.contains(lon, lat) {
		t.Fatalf("random point %f,%f outside the cell", lon, lat)
	}
	h := 0.0
	moved := 0.0
	for range 2000 {
		nlon, nlat, nh := a.step(r, lon, lat, h, 45)
		if !a.contains(nlon, nlat) {
			t.Fatalf("step left the cell: %f,%f", nlon, nlat)
		}
		d := coord.DistanceMeters(lat, lon, nlat, nlon)
		if d > 60 {
			t.Fatalf("one 45 m step moved %.1f m (an implausible speed for a walker)", d)
		}
		moved += d
		lon, lat, h = nlon, nlat, nh
	}
	if moved < 2000*30 {
		t.Errorf("walker moved only %.0f m in 2000 steps: stuck at the boundary", moved)
	}
	// Outside points are outside.
	if a.contains(a.minLon-0.001, a.minLat-0.001) || a.contains(a.maxLon+0.01, lat) {
		t.Error("contains accepts points beyond the bounding box")
	}
}

func TestParseAreaRefusesNonPolygons(t *testing.T) {
	for _, g := range []string{`{"type":"Point","coordinates":[1,2]}`, `not json`, `{"type":"MultiPolygon","coordinates":[]}`} {
		if _, err := parseArea(g); err == nil {
			t.Errorf("parseArea(%s) = nil error", g)
		}
	}
}

// TestPhotoPassesTheServersChecks runs a simulated photo through the
// inspection gridd applies to uploads: a JPEG whose EXIF position and
// time are those of the report.
func TestPhotoPassesTheServersChecks(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	at := time.Date(2026, 5, 4, 9, 30, 0, 0, time.UTC)
	p, err := takePhoto(r, 38.0712, 114.4521, at)
	if err != nil {
		t.Fatal(err)
	}
	info, err := photo.Inspect(bytes.NewReader(p.data), int64(len(p.data)), photo.DefaultLimits())
	if err != nil {
		t.Fatalf("gridd would refuse the photo: %v", err)
	}
	if info.Type != photo.JPEG || info.Width != 160 || info.Height != 120 {
		t.Errorf("inspected as %s %dx%d", info.Type, info.Width, info.Height)
	}
	if info.Exif.Lat == nil || math.Abs(*info.Exif.Lat-38.0712) > 1e-5 || math.Abs(*info.Exif.Lon-114.4521) > 1e-5 {
		t.Errorf("EXIF position %v,%v, want 38.0712,114.4521", info.Exif.Lat, info.Exif.Lon)
	}
	if info.Exif.Time == nil || !info.Exif.Time.Equal(at) {
		t.Errorf("EXIF time %v, want %v", info.Exif.Time, at)
	}
	q, _ := takePhoto(r, 38.0712, 114.4521, at)
	if q.sha == p.sha || q.uploadID == p.uploadID {
		t.Error("two photos share a hash or an upload id")
	}
}

func TestQuantileAndRetryable(t *testing.T) {
	var d []time.Duration
	for i := 1; i <= 100; i++ {
		d = append(d, time.Duration(i)*time.Millisecond)
	}
	if q := quantile(d, 0.5); q != 50*time.Millisecond {
		t.Errorf("p50 = %v", q)
	}
	if q := quantile(d, 0.99); q != 99*time.Millisecond {
		t.Errorf("p99 = %v", q)
	}
	if q := quantile(d[:1], 0.99); q != time.Millisecond {
		t.Errorf("p99 of one = %v", q)
	}
	for _, c := range []codes.Code{codes.Unavailable, codes.DeadlineExceeded, codes.Aborted, codes.ResourceExhausted} {
		if !retryable(c) {
			t.Errorf("%s not retried", c)
		}
	}
	for _, c := range []codes.Code{codes.InvalidArgument, codes.AlreadyExists, codes.FailedPrecondition, codes.PermissionDenied, codes.NotFound} {
		if retryable(c) {
			t.Errorf("%s retried: a retry cannot fix it", c)
		}
	}
}

// Two runs under different -name create different people, so their
// employee codes (unique per county) must differ; the default name keeps
// the codes existing databases already hold.
func TestEmployeeCodeUniquePerName(t *testing.T) {
	code := func(name string) string {
		s := &Sim{cfg: Config{Name: name}, county: "130123"}
		p := &person{kind: "inspector", n: 7}
		p.personID = s.stableID(p.kind, p.n)
		return s.employeeCode(p)
	}
	if got := code(DefaultConfig().Name); got != "SIM-i-0007" {
		t.Errorf("default name: %q, want SIM-i-0007", got)
	}
	if a, b := code("alpha"), code("beta"); a == b || a == code(DefaultConfig().Name) {
		t.Errorf("codes under different names collide: %q %q", a, b)
	}
}
