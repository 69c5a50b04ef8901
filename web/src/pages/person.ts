import { call } from "../api/client";
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
