// Bus validator simulator: B, T and S buttons, a tap, and the display. The app acts as the simulator device on
// the server (demo cards only); the page holds no device credential, only the session's CSRF token.
"use strict";

(function () {
  const T_LABELS = ["", "normalny", "ulga 30%", "ulga 50%", "ulga 75%"];
  const B_LABELS = ["", "bagaż lub zwierzę", "strefa podmiejska", "krótki przejazd"];

  function eventId() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    const bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  function showLines(box, lines, error) {
    box.replaceChildren(...lines.map((line) => {
      const p = document.createElement("p");
      p.textContent = line;
      return p;
    }));
    box.classList.toggle("sim-error", Boolean(error));
  }

  function start() {
    const root = document.getElementById("validator-sim");
    if (!root) return;
    const display = document.getElementById("validator-display");
    const selection = document.getElementById("validator-selection");
    const state = { t: 0, b: 0, s: false };

    const describe = () => {
      const parts = [];
      if (state.s) parts.push("sprawdzenie salda");
      else {
        if (state.t) parts.push(T_LABELS[state.t]);
        if (state.b) parts.push(B_LABELS[state.b]);
      }
      selection.textContent = "Wybór: " + (parts.length ? parts.join(", ") : "bilet domyślny karty");
    };
    document.getElementById("btn-t").addEventListener("click", () => { state.t = state.t % 4 + 1; describe(); });
    document.getElementById("btn-b").addEventListener("click", () => { state.b = state.b % 3 + 1; describe(); });
    document.getElementById("btn-s").addEventListener("click", () => { state.s = true; describe(); });

    document.getElementById("btn-tap").addEventListener("click", async () => {
      const foreign = document.getElementById("foreign-card").checked;
      const number = document.getElementById("card-number").value.trim();
      const body = {
        event_id: eventId(),
        at: new Date().toISOString(),
        card_number: foreign || !number ? null : number,
        vehicle_id: document.getElementById("vehicle-id").value.trim() || "BUS",
        stop_id: document.getElementById("stop-id").value.trim() || "STOP",
        buttons: { t: state.t, b: state.b, s: state.s },
      };
      state.t = 0; state.b = 0; state.s = false;
      describe();
      try {
        const response = await fetch("/simulators/validator/tap", {
          method: "POST",
          credentials: "same-origin",
          headers: { "Content-Type": "application/json", "X-CSRFToken": root.dataset.csrf },
          body: JSON.stringify(body),
        });
        const data = await response.json();
        if (!response.ok) showLines(display, [data.detail || "BŁĄD"], true);
        else showLines(display, data.display, !data.accepted);
      } catch (error) {
        showLines(display, ["BRAK POŁĄCZENIA"], true);
      }
    });
  }

  document.addEventListener("DOMContentLoaded", start);
})();
