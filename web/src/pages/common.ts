import { ApiError } from "../api/client";
import { t } from "../i18n";

/** showError puts an API error into el in the user's words. */
export function showError(el: HTMLElement, e: unknown, listViolations = true): void {
  el.setAttribute("role", "alert");
  if (e instanceof ApiError) {
    const what = e.notFound ? t("notFound") : e.denied ? t("denied") : e.code === 3 ? t("invalid") : t("error");
    el.textContent = `${what}: ${e.message}`;
    // Field violations (google.rpc.BadRequest), one per line, as the server words them.
    if (listViolations && e.violations.length > 0) {
      const ul = document.createElement("ul");
      for (const v of e.violations.slice(0, 50)) {
        const li = document.createElement("li");
        li.textContent = `${v.field}: ${v.description}`;
        ul.append(li);
      }
      el.append(ul);
    }
  } else {
    el.textContent = `${t("error")}: ${String(e)}`;
  }
}

/** title sets the page heading and the document title together. */
export function heading(text: string): HTMLHeadingElement {
  document.title = `${text} · ${t("appName")}`;
  const el = document.createElement("h1");
  el.textContent = text;
  return el;
}
