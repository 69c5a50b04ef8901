package waters

import (
	"bytes"
	"context"
	"encoding/json"
	"time"

	"github.com/twpayne/go-geom/encoding/geojson"
)

// exportProps are the properties ImportReaches reads, plus the version and
// its start for the reader's information (the import ignores them).
type exportProps struct {
	Code      string `json:"code"`
	Name      string `json:"name"`
	BodyCode  string `json:"body_code"`
	BodyName  string `json:"body_name"`
	BodyKind  Kind   `json:"body_kind"`
	NodeCode  string `json:"node_code"`
	Seq       int    `json:"seq"`
	Version   int    `json:"version"`
	ValidFrom string `json:"valid_from"`
}

// ExportGeoJSON writes the reaches of a county in force at t (zero: now)
// that keep accepts (nil: all) as a FeatureCollection that ImportGeoJSON
// reads back unchanged.
func (s *Store) ExportGeoJSON(ctx context.Context, county string, t time.Time, keep func(Reach) bool) ([]byte, int, error) {
	all, err := s.reachesAt(ctx, county, t)
	if err != nil {
		return nil, 0, err
	}
	reaches := all[:0]
	for _, r := range all {
		if keep == nil || keep(r) {
			reaches = append(reaches, r)
		}
	}
	var b bytes.Buffer
	b.WriteString(`{"type":"FeatureCollection","features":[`)
	for i, r := range reaches {
		if i > 0 {
			b.WriteByte(',')
		}
		g, err := geojson.Marshal(r.Geometry)
		if err != nil {
			return nil, 0, err
		}
		props, err := json.Marshal(exportProps{Code: r.Code, Name: r.Name, BodyCode: r.BodyCode, BodyName: r.BodyName, BodyKind: r.BodyKind,
			NodeCode: r.NodeCode, Seq: r.Seq, Version: r.Version, ValidFrom: r.ValidFrom.UTC().Format(time.RFC3339Nano)})
		if err != nil {
			return nil, 0, err
		}
		b.WriteString(`{"type":"Feature","properties":`)
		b.Write(props)
		b.WriteString(`,"geometry":`)
		b.Write(g)
		b.WriteByte('}')
	}
	b.WriteString("]}\n")
	return b.Bytes(), len(reaches), nil
}
