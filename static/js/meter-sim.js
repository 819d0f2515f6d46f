// Parking meter simulator: insert a card, "+", AKCEPTUJ, ANULUJ, DOŁADUJ and coins. The app acts as the simulator
// device on the server (demo cards only); the page holds no device credential, only the session's CSRF token.
"use strict";

(function () {
  function eventId() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    const bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  function zl(grosze) {
    return (grosze / 100).toFixed(2).replace(".", ",") + "\u00a0zł";
  }

  function start() {
    const root = document.getElementById("meter-sim");
    if (!root) return;
    const display = document.getElementById("meter-display");
    const printout = document.getElementById("meter-printout");
    const buttons = ["btn-plus", "btn-accept", "btn-cancel", "btn-top-up"].map((id) => document.getElementById(id));
    const coinButtons = Array.from(document.querySelectorAll("button.coin"));
    let session = null; // { number, at, presses, mode, coins }

    const show = (lines, error) => {
      display.replaceChildren(...lines.map((line) => {
        const p = document.createElement("p");
        p.textContent = line;
        return p;
      }));
      display.classList.toggle("sim-error", Boolean(error));
    };
    const sync = () => {
      buttons.forEach((b) => { b.disabled = !session; });
      coinButtons.forEach((b) => { b.disabled = !session || session.mode !== "top_up"; });
      document.getElementById("btn-plus").disabled = !session || session.mode === "top_up";
      document.getElementById("btn-top-up").disabled = !session || session.mode === "top_up";
      document.getElementById("btn-insert").disabled = Boolean(session);
    };
    const call = async (path, body) => {
      try {
        const response = await fetch("/simulators/meter/" + path, {
          method: "POST",
          credentials: "same-origin",
          headers: { "Content-Type": "application/json", "X-CSRFToken": root.dataset.csrf },
          body: JSON.stringify(body),
        });
        const data = await response.json();
        if (!response.ok) { show([data.detail || "BŁĄD"], true); return null; }
        return data;
      } catch (error) {
        show(["BRAK POŁĄCZENIA"], true);
        return null;
      }
    };
    const finish = () => { session = null; sync(); };

    document.getElementById("btn-insert").addEventListener("click", async () => {
      const foreign = document.getElementById("meter-foreign-card").checked;
      const number = document.getElementById("meter-card-number").value.trim();
      const at = new Date().toISOString();
      const data = await call("insert", { at: at, card_number: foreign || !number ? null : number });
      if (!data) return;
      show(data.display, !data.accepted);
      printout.textContent = "";
      if (data.accepted) session = { number: number, at: at, presses: 0, mode: "parking", coins: [] };
      sync();
    });
    document.getElementById("btn-plus").addEventListener("click", async () => {
      const data = await call("quote", { at: session.at, card_number: session.number, presses: session.presses + 1 });
      if (!data) return;
      session.presses = data.presses;
      show(data.display, !data.accepted);
    });
    document.getElementById("btn-top-up").addEventListener("click", () => {
      session.mode = "top_up";
      session.presses = 0;
      show(["ŁADOWANIE KARTY", "OPŁATA: " + zl(0)]);
      sync();
    });
    coinButtons.forEach((button) => button.addEventListener("click", () => {
      session.coins.push(Number(button.dataset.coin));
      show(["ŁADOWANIE KARTY", "OPŁATA: " + zl(session.coins.reduce((a, b) => a + b, 0))]);
    }));
    document.getElementById("btn-accept").addEventListener("click", async () => {
      const common = { event_id: eventId(), at: session.at, card_number: session.number };
      const data = session.mode === "top_up"
        ? await call("top-up", Object.assign(common, { coins: session.coins }))
        : await call("accept", Object.assign(common, { presses: session.presses }));
      if (!data) return;
      show(data.display, !data.accepted);
      if (data.accepted) {
        printout.textContent = (data.ticket || data.receipt || []).join("\n");
        finish();
      } else if (data.card_returned) {
        finish();
      }
    });
    document.getElementById("btn-cancel").addEventListener("click", async () => {
      const data = await call("cancel", { coins: session.coins });
      if (!data) return;
      const lines = data.display.slice();
      if (data.coins_returned) lines.push("ZWROT: " + data.coins_returned_text);
      show(lines);
      printout.textContent = "";
      finish();
    });
    sync();
  }

  document.addEventListener("DOMContentLoaded", start);
})();
