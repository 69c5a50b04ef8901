package audit

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/go-pdf/fpdf"

	"ecogrid/internal/structerr"
)

// EnvPDFFont names a TrueType font with CJK and Latin glyphs for the PDF
// reports; without it the fonts below are tried. Debian's
// fonts-arphic-gbsn00lp (AR PL SungtiL GB, a 宋体 covering GB 2312 and
// ASCII) is a plain TrueType (glyf) font that fpdf can embed; the Noto CJK
// .ttc collections are CFF and cannot be; DroidSansFallback has no Latin
// glyphs (digits print as boxes) and is the last resort.
const EnvPDFFont = "ECOGRID_PDF_FONT"

var pdfFonts = []string{
	"/usr/share/fonts/truetype/arphic-gbsn00lp/gbsn00lp.ttf",
	"/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",
	"/usr/share/fonts/truetype/droid/DroidSansFallback.ttf",
}

func pdfFont() (string, error) {
	cands := pdfFonts
	if f := os.Getenv(EnvPDFFont); f != "" {
		cands = []string{f}
	}
	for _, f := range cands {
		if st, err := os.Stat(f); err == nil && st.Mode().IsRegular() {
			return f, nil
		}
	}
	return "", structerr.NewFailedPrecondition("no Chinese font for PDF reports: install fonts-arphic-gbsn00lp or set %s", EnvPDFFont)
}

// Chinese names of the states and roles the report prints.
var stateNames = map[string]string{
	"reported": "已上报", "accepted": "已受理", "rejected": "不予受理", "dispatched": "已派遣", "in_progress": "整改中",
	"rectified": "已整改", "verified": "已核查", "closed": "已结案",
}

// actNames are the Chinese names of the acts a report lists.
var actNames = map[string]string{
	"violation.reported": "上报问题", "case.accepted": "受理案件", "case.rejected": "不予受理", "case.dispatched": "派遣案件",
	"case.rectified": "提交整改", "case.verified": "现场核查", "case.closed": "结案", "case.reopened": "重新立案",
	"case.escalated": "升级督办", "case.reassigned": "改派", "assignment.started": "任职", "assignment.ended": "离岗",
	"assignment.transferred": "调任",
}

var roleNames = map[string]string{
	"inspector": "网格员", "grid_chief": "网格长", "township_supervisor": "乡镇负责人", "county_officer": "县级管理员",
	"admin": "系统管理员", "river_chief": "河长",
}

func zh(m map[string]string, k string) string {
	if v, ok := m[k]; ok {
		return v
	}
	return k
}

func day(t *time.Time) string {
	if t == nil {
		return "—"
	}
	return t.In(chinaTime).Format("2006-01-02")
}

// chinaTime is the time zone the printed report uses (UTC+8, no DST).
var chinaTime = time.FixedZone("CST", 8*3600)

// WritePDF renders a report as a printable A4 PDF in Chinese: the
// headline figures, the posts and handovers, every case with its ledger
// citations, and how to verify the report. The JSON report is what
// verifies; the PDF says where its facts come from.
func WritePDF(w io.Writer, r *Report) error {
	pdf, err := NewPDF("P", "领导干部生态环境离任审计报告")
	if err != nil {
		return err
	}
	pdf.SetMargins(15, 15, 15)
	pdf.SetAutoPageBreak(true, 15)
	pdf.SetFooterFunc(func() {
		pdf.SetY(-12)
		pdf.SetFont("cjk", "", 8)
		pdf.CellFormat(0, 6, fmt.Sprintf("报告编号 %s · 第 %d 页", r.ReportID, pdf.PageNo()), "", 0, "C", false, 0, "")
	})
	pdf.AddPage()
	f, s := r.Facts, r.Facts.Summary
	name := f.PersonName
	if name == "" {
		name = r.PersonNames[f.PersonID]
	}

	pdf.SetFont("cjk", "", 16)
	pdf.CellFormat(0, 10, "领导干部生态环境离任审计报告", "", 1, "C", false, 0, "")
	pdf.SetFont("cjk", "", 10)
	line := func(label, value string) {
		pdf.CellFormat(35, 6, label, "", 0, "L", false, 0, "")
		pdf.MultiCell(0, 6, value, "", "L", false)
	}
	line("被审计人", name+"（"+f.PersonID+"）")
	line("审计期间", day(&f.Params.From)+" 至 "+day(&f.Params.To))
	line("审计人", r.AuditorName+"（"+r.AuditorID+"）")
	line("生成时间", f.Params.AsOf.In(chinaTime).Format("2006-01-02 15:04"))
	line("生成记录", "台账 "+citeText(r.Generation))
	pdf.Ln(2)

	heading := func(t string) {
		pdf.Ln(2)
		pdf.SetFont("cjk", "", 12)
		pdf.CellFormat(0, 8, t, "B", 1, "L", false, 0, "")
		pdf.SetFont("cjk", "", 9)
	}
	heading("一、主要指标")
	figures := [][2]string{
		{"任职岗位", strconv.Itoa(s.Posts)}, {"辖区案件", strconv.Itoa(s.Cases)}, {"已受理", strconv.Itoa(s.Accepted)},
		{"平均响应（小时）", strconv.FormatFloat(s.MeanResponseHours, 'f', 1, 64)}, {"已结案", strconv.Itoa(s.Closed)},
		{"按期结案", strconv.Itoa(s.ClosedOnTime)}, {"超期结案", strconv.Itoa(s.ClosedLate)}, {"超期案件", strconv.Itoa(s.Overdue)},
		{"超期天数合计", strconv.Itoa(s.OverdueDays)}, {"升级督办", strconv.Itoa(s.Escalated)}, {"重新立案", strconv.Itoa(s.Reopened)},
		{"交接时未结", strconv.Itoa(s.OpenAtEnd)}, {"交接时已超期", strconv.Itoa(s.OverdueAtEnd)}, {"上报问题", strconv.Itoa(s.ReportsFiled)}, {"本人履职行为", strconv.Itoa(s.Acts)},
	}
	for i, fg := range figures {
		pdf.CellFormat(35, 7, fg[0], "1", 0, "L", false, 0, "")
		pdf.CellFormat(25, 7, fg[1], "1", 0, "R", false, 0, "")
		if i%3 == 2 {
			pdf.Ln(-1)
		}
	}
	pdf.Ln(-1)

	heading("二、任职情况")
	for _, p := range f.Posts {
		to := "至今"
		if p.ValidTo != nil {
			to = day(p.ValidTo)
		}
		node := r.NodeNames[p.NodeCode]
		pdf.MultiCell(0, 5, fmt.Sprintf("%s %s（%s）%s，%s 至 %s %s；台账 %s", zh(roleNames, p.Role), node, p.NodeCode, "",
			day(&p.ValidFrom), to, endText(p), citeList(p.Cites, 6)), "", "L", false)
	}
	heading("三、交接情况")
	if len(f.Handovers) == 0 {
		pdf.MultiCell(0, 5, "审计期间无交接。", "", "L", false)
	}
	for _, h := range f.Handovers {
		pdf.MultiCell(0, 5, fmt.Sprintf("%s %s（%s）：%s，原因：%s；交接时未结案件 %d 件；经办人 %s；台账 %s",
			day(&h.At), r.NodeNames[h.NodeCode], h.NodeCode, map[string]string{"ended": "离岗", "transferred": "调任"}[h.Kind], h.Reason,
			len(h.OpenCases), r.PersonNames[h.ActorID], citeText(h.Cite)), "", "L", false)
	}

	heading("四、辖区案件")
	cols := []struct {
		title string
		w     float64
	}{{"案件", 22}, {"网格", 26}, {"立案", 18}, {"期限", 18}, {"结案", 18}, {"超期(天)", 14}, {"督办", 10}, {"重开", 10}, {"交接时", 16}, {"台账记录", 28}}
	header := func() {
		for _, c := range cols {
			pdf.CellFormat(c.w, 6, c.title, "1", 0, "C", false, 0, "")
		}
		pdf.Ln(-1)
	}
	header()
	pdf.SetFont("cjk", "", 7.5)
	for _, c := range f.Cases {
		if pdf.GetY() > 270 {
			pdf.AddPage()
			pdf.SetFont("cjk", "", 9)
			header()
			pdf.SetFont("cjk", "", 7.5)
		}
		node := r.NodeNames[c.NodeCode]
		if node == "" {
			node = c.NodeCode
		}
		yes := map[bool]string{true: "是", false: "否"}
		cells := []string{c.CaseID[:8], node, day(c.OpenedAt), day(c.Deadline), day(c.ClosedAt), strconv.Itoa(c.OverdueDays),
			yes[c.Escalated], strconv.Itoa(c.Reopened), zh(stateNames, c.StateAtEnd), citeList(c.Cites, 1)}
		for i, col := range cols {
			pdf.CellFormat(col.w, 5, cells[i], "1", 0, "L", false, 0, "")
		}
		pdf.Ln(-1)
	}
	pdf.SetFont("cjk", "", 9)

	heading("五、本人履职行为")
	if len(f.Acts) == 0 {
		pdf.MultiCell(0, 5, "审计期间无本人履职记录。", "", "L", false)
	}
	for _, a := range f.Acts {
		pdf.MultiCell(0, 5, fmt.Sprintf("%s（%s）：%d 次；台账 %s", zh(actNames, a.Action), a.Action, a.Count, citeList(a.Cites, 4)), "", "L", false)
	}

	heading("六、巡查任务完成情况")
	pdf.MultiCell(0, 5, "按月统计本人在所任网格内的有效巡查次数与网格巡查任务要求（巡查记录来自现场系统，不在台账包含证明范围内，仅供参考）。", "", "L", false)
	if len(r.Patrols) == 0 {
		pdf.MultiCell(0, 5, "审计期间无巡查任务要求。", "", "L", false)
	}
	met := 0
	for _, m := range r.Patrols {
		if m.Compliant {
			met++
		}
	}
	if len(r.Patrols) > 0 {
		pdf.MultiCell(0, 5, fmt.Sprintf("共 %d 个网格月，达标 %d 个（%.1f%%）。未达标月份：", len(r.Patrols), met, float64(met)*100/float64(len(r.Patrols))), "", "L", false)
		var short []string
		for _, m := range r.Patrols {
			if !m.Compliant {
				name := m.CellName
				if name == "" {
					name = m.CellCode
				}
				short = append(short, fmt.Sprintf("%s %s %d/%d", m.Month, name, m.Done, m.Required))
			}
		}
		if len(short) == 0 {
			short = []string{"无"}
		}
		pdf.SetFont("cjk", "", 7.5)
		pdf.MultiCell(0, 4.5, strings.Join(short, "；"), "", "L", false)
		pdf.SetFont("cjk", "", 9)
	}

	heading("七、核验方法")
	pdf.MultiCell(0, 5, "本报告每项事实均引自生态环境损害责任终身追究台账（县代码/序号），报告电子版（JSON）附有每条台账记录相对于已签名检查点的默克尔包含证明。"+
		"持有县台账公钥者可离线核验：gridctl audit verify-report 报告.json -pub 公钥。", "", "L", false)
	for _, n := range r.Checkpoints {
		body, _, _ := strings.Cut(n, "\n\n")
		pdf.MultiCell(0, 4, "检查点："+strings.ReplaceAll(body, "\n", " "), "", "L", false)
	}
	pdf.MultiCell(0, 5, "事实摘要 SHA-256："+r.Digest, "", "L", false)
	if err := pdf.Error(); err != nil {
		return fmt.Errorf("audit: rendering the PDF: %w", err)
	}
	return pdf.Output(w)
}

func endText(p Post) string {
	switch p.EndedBy {
	case "ended":
		return "（离岗：" + p.EndReason + "）"
	case "transferred":
		return "（调任：" + p.EndReason + "）"
	}
	return ""
}

// citeList prints at most n citations and how many more there are.
func citeList(cs []Cite, n int) string {
	var parts []string
	for i, c := range cs {
		if i == n {
			parts = append(parts, fmt.Sprintf("等%d条", len(cs)))
			break
		}
		if i == 0 {
			parts = append(parts, citeText(c))
		} else {
			parts = append(parts, "#"+strconv.FormatInt(c.Seq, 10))
		}
	}
	return strings.Join(parts, " ")
}

// NewPDF starts an A4 document ("P" portrait, "L" landscape) titled
// title, with the Chinese font (see EnvPDFFont) loaded as "cjk": the
// tenure audit and the assessment's scorecards print with it.
func NewPDF(orientation, title string) (*fpdf.Fpdf, error) {
	font, err := pdfFont()
	if err != nil {
		return nil, err
	}
	fontBytes, err := os.ReadFile(font)
	if err != nil {
		return nil, fmt.Errorf("reading the PDF font: %w", err)
	}
	pdf := fpdf.New(orientation, "mm", "A4", "")
	pdf.SetTitle(title, true)
	pdf.SetCreator("ecogrid", true)
	pdf.AddUTF8FontFromBytes("cjk", "", fontBytes)
	if err := pdf.Error(); err != nil {
		return nil, fmt.Errorf("loading the PDF font %s: %w", font, err)
	}
	return pdf, nil
}
