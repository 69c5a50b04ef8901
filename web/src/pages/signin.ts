import { ApiError, login } from "../api/client";
import { h } from "../dom";
import { getLang, setLang, t } from "../i18n";

/** renderSignIn shows the sign-in form; lockouts are explained. */
export function renderSignIn(app: HTMLElement, done: () => void): void {
  document.title = `${t("signIn")} · ${t("appName")}`;
  const user = h("input", { name: "username", autocomplete: "username", required: true, id: "username" });
  const pass = h("input", { name: "password", type: "password", autocomplete: "current-password", required: true, id: "password" });
  const msg = h("p", { role: "alert" });
  const button = h("button", { type: "submit" }, t("signIn"));
  const form = h(
    "form",
    { "aria-label": t("signIn") },
    h("h1", {}, t("appName")),
    h("label", { for: "username" }, t("username")),
    user,
    h("label", { for: "password" }, t("password")),
    pass,
    button,
    msg,
    h(
      "button",
      {
        type: "button",
        onclick: () => {
          setLang(getLang() === "zh-CN" ? "en" : "zh-CN");
          app.replaceChildren();
          renderSignIn(app, done);
        },
      },
      t("language"),
    ),
  );
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    button.disabled = true;
    msg.textContent = t("signingIn");
    try {
      await login(user.value, pass.value);
      done();
    } catch (e) {
      if (e instanceof ApiError && e.exhausted) msg.textContent = `${t("lockedOut")} (${e.message})`;
      else if (e instanceof ApiError && e.unauthenticated) msg.textContent = t("wrongCredentials");
      else msg.textContent = `${t("error")}: ${e instanceof Error ? e.message : String(e)}`;
    } finally {
      button.disabled = false;
    }
  });
  app.append(h("main", { class: "signin" }, form));
  user.focus();
}
