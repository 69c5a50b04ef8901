package grid

import (
	"encoding/json"
	"strconv"
)

// exportFeature is the GeoJSON shape of one node; ParseFeatureCollection
// reads it back unchanged (round trip), and QGIS opens it as is.
type exportFeature struct {
	Type       string         `json:"type"`
	ID         string         `json:"id"`
	Properties exportProps    `json:"properties"`
	Geometry   exportGeometry `json:"geometry"`
}

type exportProps struct {
	ID         string  `json:"id"`
	Code       string  `json:"code"`
	Name       string  `json:"name"`
	Level      string  `json:"level"`
	ParentCode string  `json:"parent_code,omitempty"`
	AreaHa     float64 `json:"area_ha"`
	Version    int     `json:"version"`
	ValidFrom  string  `json:"valid_from"`
	Tasks      []Task  `json:"tasks"`
}

type exportGeometry struct {
	Type        string        `json:"type"`
	Coordinates rawCoordinate `json:"coordinates"`
}

// rawCoordinate writes MultiPolygon coordinates with the shortest decimal
// that round-trips each float64, so export → import is lossless.
type rawCoordinate []byte

// MarshalJSON implements json.Marshaler: the bytes are already JSON.
func (r rawCoordinate) MarshalJSON() ([]byte, error) { return r, nil }

// FeatureJSON renders one node as a GeoJSON Feature (one line, no newline).
func FeatureJSON(n *Node) ([]byte, error) {
	f := exportFeature{
		Type: "Feature",
		ID:   n.ID.String(),
		Properties: exportProps{
			ID:         n.ID.String(),
			Code:       n.Code,
			Name:       n.Name,
			Level:      n.Level.String(),
			ParentCode: ParentCode(n.Code),
			AreaHa:     n.AreaHa,
			Version:    n.Version,
			ValidFrom:  n.ValidFrom.UTC().Format("2006-01-02T15:04:05Z07:00"),
			Tasks:      n.Tasks,
		},
		Geometry: exportGeometry{Type: "MultiPolygon", Coordinates: multiPolygonCoords(n)},
	}
	if f.Properties.Tasks == nil {
		f.Properties.Tasks = []Task{}
	}
	return json.Marshal(f)
}

func multiPolygonCoords(n *Node) rawCoordinate {
	b := []byte{'['}
	mp := n.Geometry
	if mp != nil {
		for pi := range mp.NumPolygons() {
			if pi > 0 {
				b = append(b, ',')
			}
			b = append(b, '[')
			p := mp.Polygon(pi)
			for ri := range p.NumLinearRings() {
				if ri > 0 {
					b = append(b, ',')
				}
				b = append(b, '[')
				flat := p.LinearRing(ri).FlatCoords()
				for i := 0; i+1 < len(flat); i += 2 {
					if i > 0 {
						b = append(b, ',')
					}
					b = append(b, '[')
					b = strconv.AppendFloat(b, flat[i], 'f', -1, 64)
					b = append(b, ',')
					b = strconv.AppendFloat(b, flat[i+1], 'f', -1, 64)
					b = append(b, ']')
				}
				b = append(b, ']')
			}
			b = append(b, ']')
		}
	}
	return append(b, ']')
}

// FeatureCollectionHeader and FeatureCollectionFooter frame a streamed
// export: header, features joined by ",\n", footer.
const (
	FeatureCollectionHeader = `{"type":"FeatureCollection","features":[` + "\n"
	FeatureCollectionFooter = "\n]}\n"
)
