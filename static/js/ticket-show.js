// The ticket page ("Pokaż bilet do kontroli", /tickets/<id>/show): binds the ticket to this phone and draws
// its code (static/js/ticket-pass.js).
import { TicketPass } from "./ticket-pass.js";

const root = document.getElementById("ticket-show");
if (root && root.dataset.mobile === "yes") {
  new TicketPass(root).start().catch((error) => {
    document.getElementById("pass-status").textContent = document.getElementById("pass-texts").dataset.error;
    console.warn(error);
  });
}
