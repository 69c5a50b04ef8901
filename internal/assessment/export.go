package assessment

import (
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/xuri/excelize/v2"

	"ecogrid/internal/audit"
)

// Sheet is what an export shows: a level's scorecards for a period with
// the catalogue that names their figures.
type Sheet struct {
	Period    Period
	Level     string
	Closed    bool
	Catalogue []Indicator
	Cards     []Scorecard
}

var levelNames = map[string]string{LevelVillage: "村（社区）", LevelTownship: "乡镇（街道）", LevelPerson: "人员"}

var kindNames = map[AreaKind]string{Ecological: "生态保护区", Agricultural: "农业区", Urban: "城镇/工业区"}

func kindName(k AreaKind) string {
	if n, ok := kindNames[k]; ok {
		return n
	}
	return string(k)
}

// rows lays the sheet out as a table: a header, then one row per
// scorecard (values of figures that do not apply are empty).
func (s Sheet) rows() [][]string {
	head := []string{"代码 code", "名称 name", "上级 parent", "区域类型 kind", "总分 total", "排名 rank", "同级数 siblings", "迟报 late"}
	for _, ind := range s.Catalogue {
		head = append(head, ind.Name+" ("+ind.Unit+") "+ind.Code, "得分 score")
	}
	out := [][]string{head}
	for _, c := range s.Cards {
		row := []string{c.Code, c.Name, c.Parent, kindName(c.Kind), ftoa(c.Total), strconv.Itoa(c.Rank), strconv.Itoa(c.Of), strconv.Itoa(c.Late)}
		for _, ind := range s.Catalogue {
			f := c.Figure(ind.Code)
			if f.Applicable {
				row = append(row, ftoa(f.Value), ftoa(f.Score))
			} else {
				row = append(row, "", "")
			}
		}
		out = append(out, row)
	}
	return out
}

// WriteCSV writes the sheet as CSV (UTF-8, one header line).
func WriteCSV(w io.Writer, s Sheet) error {
	cw := csv.NewWriter(w)
	if err := cw.WriteAll(s.rows()); err != nil {
		return err
	}
	cw.Flush()
	return cw.Error()
}

// WriteXLSX writes the sheet as an Excel workbook: the scorecards, then a
// sheet with the catalogue (definitions and scoring rules).
func WriteXLSX(w io.Writer, s Sheet) error {
	x := excelize.NewFile()
	defer x.Close()
	name := "考核 " + s.Period.Label
	if err := x.SetSheetName("Sheet1", name); err != nil {
		return err
	}
	for i, row := range s.rows() {
		for j, v := range row {
			cell, _ := excelize.CoordinatesToCellName(j+1, i+1)
			var err error
			if f, perr := strconv.ParseFloat(v, 64); perr == nil && i > 0 && j >= 4 {
				err = x.SetCellFloat(name, cell, f, -1, 64)
			} else {
				err = x.SetCellStr(name, cell, v)
			}
			if err != nil {
				return err
			}
		}
	}
	if err := x.SetPanes(name, &excelize.Panes{Freeze: true, XSplit: 2, YSplit: 1, TopLeftCell: "C2", ActivePane: "bottomRight"}); err != nil {
		return err
	}
	const cat = "指标 indicators"
	if _, err := x.NewSheet(cat); err != nil {
		return err
	}
	for i, row := range catalogueRows(s.Catalogue) {
		for j, v := range row {
			cell, _ := excelize.CoordinatesToCellName(j+1, i+1)
			if err := x.SetCellStr(cat, cell, v); err != nil {
				return err
			}
		}
	}
	return x.Write(w)
}

func catalogueRows(cat []Indicator) [][]string {
	out := [][]string{{"代码 code", "名称 name", "定义 definition", "单位 unit", "方向 direction", "评分规则 scoring", "来源 source"}}
	for _, ind := range cat {
		out = append(out, []string{ind.Code, ind.Name, ind.Definition, ind.Unit, string(ind.Direction), ind.ScoringRule(), string(ind.Source)})
	}
	return out
}

// WritePDF prints the sheet on A4 landscape pages in Chinese, with the
// font of the audit reports.
func WritePDF(w io.Writer, s Sheet) error {
	title := "生态环境考核结果 · " + levelNames[s.Level] + " · " + s.Period.Label
	pdf, err := audit.NewPDF("L", title)
	if err != nil {
		return err
	}
	pdf.SetMargins(10, 10, 10)
	pdf.SetAutoPageBreak(true, 12)
	pdf.SetFooterFunc(func() {
		pdf.SetY(-10)
		pdf.SetFont("cjk", "", 7)
		pdf.CellFormat(0, 5, fmt.Sprintf("%s %s · 第 %d 页", s.Period.County, s.Period.Label, pdf.PageNo()), "", 0, "C", false, 0, "")
	})
	pdf.AddPage()
	pdf.SetFont("cjk", "", 14)
	pdf.CellFormat(0, 9, title, "", 1, "C", false, 0, "")
	pdf.SetFont("cjk", "", 9)
	state := "未结期（数据仍可变化）"
	if s.Closed {
		state = "已结期（结果已冻结并记入台账）"
	}
	pdf.CellFormat(0, 6, fmt.Sprintf("县 %s · 期间 %s 至 %s · %s", s.Period.County, s.Period.From.Format("2006-01-02"),
		s.Period.To.AddDate(0, 0, -1).Format("2006-01-02"), state), "", 1, "L", false, 0, "")
	pdf.Ln(1)
	fixed := []float64{8, 40, 18, 12}
	width := (277 - 78) / float64(max(1, len(s.Catalogue)))
	header := func() {
		pdf.SetFont("cjk", "", 6)
		for i, h := range []string{"排名", "名称", "类型", "总分"} {
			pdf.CellFormat(fixed[i], 8, h, "1", 0, "C", false, 0, "")
		}
		for _, ind := range s.Catalogue {
			pdf.CellFormat(width, 8, pdfText(ind.Name), "1", 0, "C", false, 0, "")
		}
		pdf.Ln(-1)
	}
	header()
	pdf.SetFont("cjk", "", 7)
	for _, c := range s.Cards {
		if pdf.GetY() > 190 {
			pdf.AddPage()
			header()
			pdf.SetFont("cjk", "", 7)
		}
		name := c.Name
		if name == "" {
			name = c.Code
		}
		pdf.CellFormat(fixed[0], 6, fmt.Sprintf("%d/%d", c.Rank, c.Of), "1", 0, "C", false, 0, "")
		pdf.CellFormat(fixed[1], 6, pdfText(name), "1", 0, "L", false, 0, "")
		pdf.CellFormat(fixed[2], 6, pdfText(kindName(c.Kind)), "1", 0, "C", false, 0, "")
		pdf.CellFormat(fixed[3], 6, ftoa(c.Total), "1", 0, "R", false, 0, "")
		for _, ind := range s.Catalogue {
			v := "—"
			if f := c.Figure(ind.Code); f.Applicable {
				v = ftoa(f.Value)
			}
			pdf.CellFormat(width, 6, v, "1", 0, "R", false, 0, "")
		}
		pdf.Ln(-1)
	}
	pdf.Ln(3)
	pdf.SetFont("cjk", "", 10)
	pdf.CellFormat(0, 7, "指标说明", "B", 1, "L", false, 0, "")
	pdf.SetFont("cjk", "", 7)
	for _, ind := range s.Catalogue {
		better := "越高越好"
		if ind.Direction == LowerIsBetter {
			better = "越低越好"
		}
		pdf.MultiCell(0, 4.5, pdfText(fmt.Sprintf("%s（%s，%s，%s）：%s；评分：%s 得100分，%s 得0分，其间线性。",
			ind.Name, ind.Code, ind.Unit, better, ind.Definition, ftoa(ind.Best), ftoa(ind.Worst))), "", "L", false)
	}
	if err := pdf.Error(); err != nil {
		return err
	}
	return pdf.Output(w)
}

// pdfText replaces the characters the GB 2312 font has no glyph for.
func pdfText(s string) string { return strings.NewReplacer("²", "2", "→", "->").Replace(s) }
