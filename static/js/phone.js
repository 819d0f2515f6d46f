// EKP on a phone (issue 15): forms that say what they are doing and are sent once, inline errors that
// clear when the field is fixed, and the install prompt. Loaded from a file (CSP: no inline scripts).
"use strict";

// An inline error belongs to a field (aria-invalid, .has-error, #<name>-errors); once the passenger changes
// the field the message is stale: clear it (the server checks again on sending).
function clearFixedErrors() {
  const clear = (event) => {
    const input = event.target;
    if (!(input instanceof HTMLElement) || input.getAttribute("aria-invalid") !== "true") return;
    input.removeAttribute("aria-invalid");
    const field = input.closest(".field, fieldset");
    if (field) field.classList.remove("has-error");
    const errors = input.id && document.getElementById(`${input.id}-errors`)
      || (field && field.querySelector(".field-errors"));
    if (errors) errors.replaceChildren();
  };
  document.addEventListener("input", clear);
  document.addEventListener("change", clear);
}

// Plain (non-htmx) forms: a second tap while the first is on its way is ignored; the buttons show progress.
// Disabled only after the browser has read the form, so the pressed button's name/value is still sent.
function sendOnce() {
  document.addEventListener("submit", (event) => {
    const form = event.target;
    if (!(form instanceof HTMLFormElement) || event.defaultPrevented) return;
    if (form.dataset.sending === "1") { event.preventDefault(); return; }
    form.dataset.sending = "1";
    form.classList.add("is-sending");
    form.setAttribute("aria-busy", "true");
    window.setTimeout(() => {
      form.querySelectorAll("button[type=submit], button:not([type])").forEach((b) => { b.disabled = true; });
    }, 0);
  });
  // Back to a page kept in the back/forward cache: its forms may be sent again.
  window.addEventListener("pageshow", () => {
    document.querySelectorAll("form[data-sending]").forEach((form) => {
      delete form.dataset.sending;
      form.classList.remove("is-sending");
      form.removeAttribute("aria-busy");
      form.querySelectorAll("button[type=submit], button:not([type])").forEach((b) => { b.disabled = false; });
    });
  });
}

// Install: Chromium offers `beforeinstallprompt` (a button of ours); iOS Safari has no prompt: a short hint.
function installPrompt() {
  const box = document.getElementById("install-app");
  const button = document.getElementById("install-button");
  const iosHint = document.getElementById("install-ios");
  const standalone = window.matchMedia("(display-mode: standalone)").matches || navigator.standalone === true;
  if (standalone) return;
  let deferred = null;
  window.addEventListener("beforeinstallprompt", (event) => {
    event.preventDefault();
    deferred = event;
    if (box) box.hidden = false;
  });
  if (button) {
    button.addEventListener("click", async () => {
      if (!deferred) return;
      deferred.prompt();
      await deferred.userChoice.catch(() => null);
      deferred = null;
      if (box) box.hidden = true;
    });
  }
  window.addEventListener("appinstalled", () => { if (box) box.hidden = true; });
  const ua = navigator.userAgent;
  const ios = /iPhone|iPad|iPod/.test(ua) || (ua.includes("Macintosh") && navigator.maxTouchPoints > 1);
  const safari = /Safari/.test(ua) && !/CriOS|FxiOS|EdgiOS/.test(ua);
  if (ios && safari && iosHint) iosHint.hidden = false;
}

document.addEventListener("DOMContentLoaded", () => {
  clearFixedErrors();
  sendOnce();
  installPrompt();
});
