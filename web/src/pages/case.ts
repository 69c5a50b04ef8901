import { call, newRequestId, upload, type Item, type Operations, type Response } from "../api/client";
import type { v1Case } from "../api/generated";

type ResponsiblePerson = Item<Response<"PeopleService_ListResponsible">["responsible"]>;
import { clear, fmtTime, h } from "../dom";
import { actionName, stateName, t } from "../i18n";
import { heading, showError } from "./common";

type StepOp = keyof Operations & `CaseService_${string}`;

/**
 * Each step the server may offer this user (Case.your_steps), the operation it calls
 * and the inputs it asks for. The page shows only the steps the server
 * lists for this user now.
 */
const steps: Record<string, { op: StepOp; text?: "note" | "reason"; handler?: boolean; deadline?: boolean; days?: boolean; photos?: boolean }> = {
  CASE_ACTION_ACCEPT: { op: "CaseService_AcceptCase", text: "note" },
  CASE_ACTION_REJECT: { op: "CaseService_RejectCase", text: "reason" },
  CASE_ACTION_DISPATCH: { op: "CaseService_DispatchCase", text: "note", handler: true, deadline: true },
  CASE_ACTION_START_WORK: { op: "CaseService_StartWork", text: "note" },
  CASE_ACTION_SUBMIT_RECTIFICATION: { op: "CaseService_SubmitRectification", text: "note", photos: true },
  CASE_ACTION_VERIFY: { op: "CaseService_VerifyRectification", text: "note" },
  CASE_ACTION_CLOSE: { op: "CaseService_CloseCase", text: "note" },
  CASE_ACTION_RETURN: { op: "CaseService_ReturnCase", text: "reason" },
  CASE_ACTION_REQUEST_EXTENSION: { op: "CaseService_RequestExtension", text: "reason", days: true },
  CASE_ACTION_APPROVE_EXTENSION: { op: "CaseService_ApproveExtension", text: "note" },
  CASE_ACTION_DECLINE_EXTENSION: { op: "CaseService_DeclineExtension", text: "note" },
  CASE_ACTION_REOPEN: { op: "CaseService_ReopenCase", text: "reason" },
  CASE_ACTION_ESCALATE: { op: "CaseService_EscalateCase", text: "reason" },
  CASE_ACTION_REASSIGN: { op: "CaseService_ReassignCase", text: "reason", handler: true },
};

/** handlersFor lists the people who can reach the case's village now. */
export async function handlersFor(c: v1Case): Promise<ResponsiblePerson[]> {
  const r = await call("PeopleService_ListResponsible", { nodeCode: c.villageCode ?? "" });
  return (r.responsible ?? []).filter((p) => p.role === "ROLE_INSPECTOR" || p.role === "ROLE_GRID_CHIEF");
}

/** DeadlineLimit is how many days after dispatch the case's severity allows. */
export interface DeadlineLimit {
  rectifyDays: number;
}

/** deadlineLimit reads the county's deadline rule for the case's severity. */
export async function deadlineLimit(c: v1Case): Promise<DeadlineLimit | undefined> {
  const r = await call("CaseService_ListDeadlineRules", { countyCode: c.countyCode ?? "" });
  const rule = (r.rules ?? []).find((x) => x.severity === c.severity);
  return rule ? { rectifyDays: rule.rectifyDays ?? 0 } : undefined;
}

const chinaDate = (ms: number): string => new Date(ms + 8 * 3600e3).toISOString().slice(0, 10);

/**
 * deadlineFor is the deadline sent for a chosen day: the end of that day
 * (China time), but never past the rule's limit from now, which the server
 * would refuse.
 */
function deadlineFor(day: string, limit?: DeadlineLimit): string {
  const end = new Date(day + "T23:59:59+08:00").getTime();
  if (!limit) return new Date(end).toISOString();
  const latest = limit.rectifyDays > 0 ? Date.now() + limit.rectifyDays * 864e5 - 60e3 : new Date(chinaDate(Date.now()) + "T23:59:59+08:00").getTime();
  return new Date(Math.min(end, latest)).toISOString();
}

export function stepForm(c: v1Case, action: string, handlers: ResponsiblePerson[], done: () => void, limit?: DeadlineLimit): HTMLFormElement | null {
  const s = steps[action];
  if (!s) return null;
  const label = actionName(action);
  const id = (f: string) => `${action}-${f}`;
  const text = s.text ? h("input", { id: id("text"), name: s.text }) : null;
  // A reassignment names a new handler only while the case has one.
  const wantsHandler = s.handler && !(action === "CASE_ACTION_REASSIGN" && !c.handlerId);
  const handler = wantsHandler ? h("select", { id: id("handler"), name: "handler", required: true }, h("option", { value: "" }, t("chooseHandler"))) : null;
  for (const p of handlers) handler?.append(h("option", { value: p.personId ?? "" }, `${p.name ?? ""} (${p.nodeCode ?? ""})`));
  // The deadline is optional: empty leaves the severity's own (the
  // county's rule); a date sets an earlier one, within the rule's limit.
  const lastDay = chinaDate(Date.now() + (limit ? limit.rectifyDays : 7) * 864e5);
  const deadline = s.deadline ? h("input", { id: id("deadline"), name: "deadline", type: "date", min: chinaDate(Date.now()), max: limit ? lastDay : undefined }) : null;
  const days = s.days ? h("input", { id: id("days"), name: "days", type: "number", min: 1, value: 3, required: true }) : null;
  const photos = s.photos ? h("input", { id: id("photos"), name: "photos", type: "file", accept: "image/jpeg,image/png,image/webp", multiple: true, required: true }) : null;
  const msg = h("p", {});
  const form = h(
    "form",
    { "aria-label": label },
    handler ? h("label", { for: id("handler") }, t("handler")) : null,
    handler,
    deadline ? h("label", { for: id("deadline") }, t("deadline")) : null,
    deadline,
    days ? h("label", { for: id("days") }, t("days")) : null,
    days,
    photos ? h("label", { for: id("photos") }, t("photos")) : null,
    photos,
    text ? h("label", { for: id("text") }, t("note")) : null,
    text,
    h("button", { type: "submit" }, label),
    msg,
  );
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const body: Record<string, unknown> = { caseId: c.id, requestId: newRequestId() };
    if (text && s.text) body[s.text] = text.value;
    if (handler) body.handlerId = handler.value;
    if (deadline?.value) body.deadline = deadlineFor(deadline.value, limit);
    if (days) body.days = Number(days.value);
    try {
      if (photos?.files) body.photoSha256 = await Promise.all(Array.from(photos.files).map(uploadPhoto));
      await call(s.op, body as Operations[typeof s.op]["request"]);
      done();
    } catch (e) {
      showError(msg, e);
    }
  });
  return form;
}

/** uploadPhoto streams a photo in chunks and returns its SHA-256. */
async function uploadPhoto(file: File): Promise<string> {
  const bytes = new Uint8Array(await file.arrayBuffer());
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  const sha256 = Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
  const chunk = 512 * 1024;
  const messages: Array<Operations["FieldService_UploadPhoto"]["request"]> = [
    { header: { uploadId: newRequestId(), size: String(bytes.length), sha256, contentType: file.type || "image/jpeg" } },
  ];
  for (let off = 0; off < bytes.length; off += chunk) {
    let bin = "";
    for (const b of bytes.subarray(off, off + chunk)) bin += String.fromCharCode(b);
    messages.push({ chunk: { offset: String(off), data: btoa(bin) } });
  }
  const r = await upload("FieldService_UploadPhoto", messages);
  return r.photo?.sha256 ?? sha256;
}

/** renderCase is a case's page: report, position, people, timeline, steps. */
export async function renderCase(main: HTMLElement, caseId: string): Promise<void> {
  const [{ case: c }, tl] = await Promise.all([call("CaseService_GetCase", { caseId }), call("CaseService_GetCaseTimeline", { caseId })]);
  if (!c) return;
  const next = c.yourSteps ?? [];
  const [handlers, limit] = await Promise.all([
    next.some((a) => steps[a]?.handler) ? handlersFor(c) : Promise.resolve([]),
    next.some((a) => steps[a]?.deadline) ? deadlineLimit(c) : Promise.resolve(undefined),
  ]);
  clear(main);
  const dl = (pairs: [string, string][]) => h("dl", {}, ...pairs.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
  const pos = c.position;
  const mapEl = h("div", { class: "minimap", role: "img", "aria-label": t("position") });
  main.append(
    heading(`${t("caseDetail")} ${c.category ?? ""} · ${stateName(c.state)}`),
    h(
      "section",
      { "aria-label": t("report") },
      h("h2", {}, t("report")),
      dl([
        [t("state"), stateName(c.state)],
        [t("category"), c.category ?? ""],
        [t("severity"), c.severity ?? ""],
        [t("description"), c.description ?? ""],
        [t("village"), c.villageCode ?? ""],
        [t("position"), pos ? `${pos.latitude?.toFixed(5)}, ${pos.longitude?.toFixed(5)}` : "—"],
        [t("handler"), c.handlerId ?? "—"],
        [t("deadline"), fmtTime(c.deadline)],
        [t("overdue"), c.overdue ? `${c.overdueDays ?? 0} ${t("days")}` : "—"],
      ]),
      h("h3", {}, t("photos")),
      h("ul", {}, ...(c.photoSha256 ?? []).map((p) => h("li", {}, h("code", {}, p.slice(0, 16))))),
      mapEl,
    ),
    h(
      "section",
      { "aria-label": t("responsible") },
      h("h2", {}, t("responsible")),
      h("ul", {}, ...(c.responsible ?? []).map((p) => h("li", {}, h("a", { href: `#/people/${encodeURIComponent(p.personId ?? "")}` }, p.name ?? ""), ` ${p.role ?? ""} ${p.nodeCode ?? ""}`))),
    ),
    h(
      "section",
      { "aria-label": t("actions") },
      h("h2", {}, t("actions")),
      next.length === 0 ? h("p", {}, t("noActions")) : null,
      ...next.map((a) => stepForm(c, a, handlers, () => void renderCase(main, caseId), limit)),
    ),
    h(
      "section",
      { "aria-label": t("timeline") },
      h("h2", {}, t("timeline")),
      h("ol", {}, ...(tl.entries ?? []).map((e) => h("li", {}, `${fmtTime(e.at)} ${actionName(e.action)} → ${stateName(e.toState)} (${e.actorRole ?? ""}) ${e.note ?? ""}`))),
    ),
  );
  if (pos?.latitude !== undefined && pos.longitude !== undefined) {
    const lat = pos.latitude,
      lon = pos.longitude;
    void import("../mapview").then(({ pointMap }) => pointMap(mapEl, lon, lat));
  }
}
