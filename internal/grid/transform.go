package grid

import (
	"context"
	"errors"
	"fmt"
	"math"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/twpayne/go-geom"
	"github.com/twpayne/go-geom/encoding/wkb"

	"ecogrid/internal/database"
)

// transformBatch is how many geometries one PostGIS round trip transforms.
const transformBatch = 2000

// transformToWGS84 turns the geometries of features in another coordinate
// system (a county file in CGCS2000 Gauss-Krüger, EPSG:4547 say) into
// WGS-84 with PostGIS's ST_Transform, in place, before any check sees
// them. It returns the features it could not transform as problems (an
// SRID PostGIS does not know is one problem for the file); an error is a
// database failure.
func (s *Store) transformToWGS84(ctx context.Context, features []Feature) (Problems, error) {
	bySRID := map[int][]int{}
	for i, f := range features {
		if f.SRID != 0 && f.SRID != database.SRID && f.Geometry != nil {
			bySRID[f.SRID] = append(bySRID[f.SRID], i)
		}
	}
	var problems Problems
	for srid, idx := range bySRID {
		var known bool
		if err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM spatial_ref_sys WHERE srid = $1)`, srid).Scan(&known); err != nil {
			return nil, err
		}
		if !known {
			problems = append(problems, Problem{Feature: -1, Kind: ProblemInvalidGeom,
				Message: fmt.Sprintf("the file's coordinate system EPSG:%d is unknown to PostGIS: give the EPSG code of the CRS the coordinates are in", srid)})
			continue
		}
		for start := 0; start < len(idx); start += transformBatch {
			chunk := idx[start:min(start+transformBatch, len(idx))]
			ps, err := s.transformChunk(ctx, features, chunk, srid)
			if err != nil {
				return nil, err
			}
			problems = append(problems, ps...)
		}
	}
	return problems, nil
}

// transformChunk transforms features[chunk] in one query; when PostGIS
// refuses the batch (a coordinate PROJ cannot invert), each is tried alone
// so that only the bad ones are reported.
func (s *Store) transformChunk(ctx context.Context, features []Feature, chunk []int, srid int) (Problems, error) {
	wkbs := make([][]byte, len(chunk))
	for j, i := range chunk {
		b, err := wkb.Marshal(features[i].Geometry, wkb.NDR)
		if err != nil {
			return nil, err
		}
		wkbs[j] = b
	}
	out, err := s.transformWKB(ctx, wkbs, srid)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		var problems Problems
		for j, i := range chunk {
			one, err := s.transformWKB(ctx, wkbs[j:j+1], srid)
			if errors.As(err, &pgErr) {
				f := features[i]
				problems = append(problems, Problem{Feature: f.Index, Code: f.Code, Name: f.Name, Kind: ProblemInvalidGeom,
					Message: fmt.Sprintf("cannot transform the boundary from EPSG:%d to WGS-84 (%s): is EPSG:%d the file's coordinate system?", srid, pgErr.Message, srid)})
				continue
			}
			if err != nil {
				return nil, err
			}
			if p, ok := setTransformed(&features[i], one[0], srid); !ok {
				problems = append(problems, p)
			}
		}
		return problems, nil
	}
	if err != nil {
		return nil, err
	}
	var problems Problems
	for j, i := range chunk {
		if p, ok := setTransformed(&features[i], out[j], srid); !ok {
			problems = append(problems, p)
		}
	}
	return problems, nil
}

func (s *Store) transformWKB(ctx context.Context, wkbs [][]byte, srid int) ([][]byte, error) {
	rows, err := s.pool.Query(ctx, `SELECT ST_AsBinary(ST_Multi(ST_Transform(ST_SetSRID(ST_GeomFromWKB(g), $2), 4326)), 'NDR')
		FROM unnest($1::bytea[]) WITH ORDINALITY AS t(g, i) ORDER BY i`, wkbs, srid)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := make([][]byte, 0, len(wkbs))
	for rows.Next() {
		var b []byte
		if err := rows.Scan(&b); err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, rows.Err()
}

// setTransformed stores a transformed geometry in f after the checks a
// WGS-84 file gets while parsing (range and extent), so that a wrongly
// declared CRS is named rather than imported somewhere on the globe.
func setTransformed(f *Feature, b []byte, srid int) (Problem, bool) {
	bad := func(format string, args ...any) (Problem, bool) {
		return Problem{Feature: f.Index, Code: f.Code, Name: f.Name, Kind: ProblemInvalidGeom,
			Message: fmt.Sprintf(format, args...) + fmt.Sprintf(" after transforming from EPSG:%d: is that the file's coordinate system?", srid)}, false
	}
	g, err := wkb.Unmarshal(b)
	if err != nil {
		return bad("the boundary is unreadable (%v)", err)
	}
	mp, ok := g.(*geom.MultiPolygon)
	if !ok {
		return bad("the boundary is a %T", g)
	}
	flat := mp.FlatCoords()
	for k := 0; k+1 < len(flat); k += 2 {
		lon, lat := flat[k], flat[k+1]
		if math.IsNaN(lon) || math.IsNaN(lat) || lon < -180 || lon > 180 || lat < -90 || lat > 90 {
			return bad("position [%g, %g] is out of range", lon, lat)
		}
		// Seven decimals are about a centimetre: what a survey gives.
		flat[k], flat[k+1] = math.Round(lon*1e7)/1e7, math.Round(lat*1e7)/1e7
	}
	if b := mp.Bounds(); b.Max(0)-b.Min(0) > MaxExtentDegrees || b.Max(1)-b.Min(1) > MaxExtentDegrees {
		return bad("the boundary spans %.1f° of longitude and %.1f° of latitude", b.Max(0)-b.Min(0), b.Max(1)-b.Min(1))
	}
	f.Geometry, f.SRID = mp, database.SRID
	return Problem{}, true
}
