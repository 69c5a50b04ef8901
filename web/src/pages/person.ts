import { base64Bytes, call, newRequestId, saveFile } from "../api/client";
import { clear, fmtTime, h } from "../dom";
import { t } from "../i18n";
import { heading, showError } from "./common";

/** renderPeople finds people by name within the user's area. */
export async function renderPeople(main: HTMLElement): Promise<void> {
  clear(main);
  const q = h("input", { id: "person-search", name: "q", type: "search" });
  const list = h("ul", { "aria-label": t("people") });
  const show = async () => {
    const r = await call("PeopleService_ListPersons", { nameContains: q.value, page: { pageSize: 200 } });
    clear(list);
    for (const p of r.persons ?? []) list.append(h("li", {}, h("a", { href: `#/people/${encodeURIComponent(p.id ?? "")}` }, p.name ?? ""), ` ${p.employeeCode ?? ""}`));
  };
  const form = h("form", { role: "search" }, h("label", { for: "person-search" }, t("searchPeople")), q, h("button", { type: "submit" }, t("search")));
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    void show().catch((e) => showError(list, e));
  });
  main.append(heading(t("people")), form, list);
  await show();
}

/**
 * renderPerson is a person's page for the leaving-office audit: who they
 * are, every assignment they held, and their ledger history, printable.
 */
export async function renderPerson(main: HTMLElement, personId: string): Promise<void> {
  const [{ person }, assignments, history] = await Promise.all([
    call("PeopleService_GetPerson", { personId }),
    call("PeopleService_ListAssignmentHistory", { personId }),
    call("AccountabilityService_PersonHistory", { personId, page: { pageSize: 500 } }),
  ]);
  clear(main);
  main.append(
    heading(`${t("person")}: ${person?.name ?? ""}`),
    h("p", {}, `${person?.employeeCode ?? ""} · ${person?.countyCode ?? ""}`),
    h("button", { type: "button", onclick: () => window.print() }, t("print")),
    " ",
    h("a", { href: `#/handover/${encodeURIComponent(personId)}` }, t("handover")),
    auditSection(personId, person?.name ?? ""),
    h(
      "section",
      { "aria-label": t("assignments") },
      h("h2", {}, t("assignments")),
      h(
        "ul",
        {},
        ...(assignments.assignments ?? []).map((a) =>
          h("li", {}, `${a.role ?? ""} ${a.nodeCode ?? ""} ${t("validFrom")} ${fmtTime(a.validFrom)} ${t("validTo")} ${a.validTo ? fmtTime(a.validTo) : t("current")} ${a.endReason ?? ""}`),
        ),
      ),
    ),
    h(
      "section",
      { "aria-label": t("history") },
      h("h2", {}, t("history")),
      h(
        "table",
        {},
        h("thead", {}, h("tr", {}, h("th", {}, "#"), h("th", {}, "time"), h("th", {}, "action"), h("th", {}, "subject"), h("th", {}, "node"))),
        h(
          "tbody",
          {},
          ...(history.records ?? []).map((r) =>
            h("tr", {}, h("td", {}, r.seq ?? ""), h("td", {}, fmtTime(r.recordedAt)), h("td", {}, r.action ?? ""), h("td", {}, `${r.subjectType ?? ""} ${r.subjectId ?? ""}`), h("td", {}, r.nodeCode ?? "")),
          ),
        ),
      ),
    ),
  );
}

/**
 * auditSection is the leaving-office audit (离任审计) of the person: the
 * server computes it from the ledger, records who audited whom, and
 * returns the headline counts, the cases, the report that verifies offline
 * (JSON with proofs) and the printable A4 PDF in Chinese.
 */
function auditSection(personId: string, name: string): HTMLElement {
  const out = h("div", { role: "status", "aria-label": t("auditResult") });
  const section = h("section", { "aria-label": t("audit") }, h("h2", {}, t("audit")));
  const button = h("button", { type: "button" }, t("runAudit"));
  button.addEventListener("click", async () => {
    out.textContent = t("loading");
    try {
      const r = await call("AuditService_TenureAudit", { reportId: newRequestId(), personId, format: "TENURE_AUDIT_FORMAT_PDF" });
      const s = r.summary ?? {};
      clear(out);
      const facts: Array<[string, number | string | undefined]> = [
        [t("auditPosts"), s.posts],
        [t("auditCases"), s.cases],
        [t("auditAccepted"), s.accepted],
        [t("auditClosed"), s.closed],
        [t("auditClosedOnTime"), s.closedOnTime],
        [t("auditClosedLate"), s.closedLate],
        [t("overdue"), s.overdue],
        [t("auditOverdueDays"), s.overdueDays],
        [t("escalated"), s.escalated],
        [t("auditReopened"), s.reopened],
        [t("auditOpenAtEnd"), s.openAtEnd],
        [t("auditReports"), s.reportsFiled],
        [t("auditActs"), s.acts],
      ];
      out.append(
        h("p", {}, `${t("auditRecorded")}: ${r.generationRecord ?? ""}`),
        h("table", { "aria-label": t("auditSummary") }, h("tbody", {}, ...facts.map(([k, v]) => h("tr", {}, h("th", {}, k), h("td", {}, String(v ?? 0)))))),
        h(
          "table",
          { "aria-label": t("auditCases") },
          h("thead", {}, h("tr", {}, h("th", {}, t("village")), h("th", {}, t("deadline")), h("th", {}, t("overdue")), h("th", {}, t("state")), h("th", {}, t("responsible")), h("th", {}, t("ledger")))),
          h(
            "tbody",
            {},
            ...(r.cases ?? []).map((c) =>
              h(
                "tr",
                {},
                h("td", {}, `${c.nodeName ?? ""} (${c.nodeCode ?? ""})`),
                h("td", {}, fmtTime(c.deadline)),
                h("td", {}, String(c.overdueDays ?? 0)),
                h("td", {}, c.stateAtEnd ?? ""),
                h("td", {}, (c.responsible ?? []).join(", ")),
                h("td", {}, (c.ledgerRecords ?? []).slice(0, 3).join(" ")),
              ),
            ),
          ),
        ),
      );
      const stem = `audit-${name || personId}-${(r.reportId ?? "").slice(0, 8)}`;
      if (r.document) {
        const pdf = base64Bytes(r.document);
        out.append(h("button", { type: "button", onclick: () => saveFile(stem + ".pdf", r.contentType ?? "application/pdf", [pdf]) }, t("downloadPdf")));
      }
      if (r.reportJson) {
        const json = base64Bytes(r.reportJson);
        out.append(" ", h("button", { type: "button", onclick: () => saveFile(stem + ".json", "application/json", [json]) }, t("downloadReport")));
      }
    } catch (e) {
      showError(out, e);
    }
  });
  section.append(button, out);
  return section;
}
