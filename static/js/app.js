// EKP: small progressive enhancements; every page works without JavaScript.
"use strict";

function toggleBirthDate() {
  const box = document.getElementById("no_pesel");
  const block = document.getElementById("birth-date-block");
  const pesel = document.getElementById("pesel");
  if (!box || !block) return;
  const sync = () => {
    block.hidden = !box.checked;
    if (pesel) {
      pesel.disabled = box.checked;
      pesel.closest(".field").hidden = box.checked;
    }
  };
  box.addEventListener("change", sync);
  sync();
}

function confirmForms() {
  document.querySelectorAll("form[data-confirm]").forEach((form) => {
    form.addEventListener("submit", (event) => {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  });
}

document.addEventListener("DOMContentLoaded", () => {
  toggleBirthDate();
  confirmForms();
  if ("serviceWorker" in navigator && (location.protocol === "https:" || location.hostname === "127.0.0.1" || location.hostname === "localhost")) {
    navigator.serviceWorker.register("/sw.js", { scope: "/" }).catch(() => {});
  }
});
