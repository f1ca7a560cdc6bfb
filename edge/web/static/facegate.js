// facegate's web app: the live parts (decisions on the dashboard, what the camera sees,
// a capture's guidance). Every page works without it; all text goes in as textContent.
"use strict";

function cell(row, text, cls) {
  const td = document.createElement("td");
  td.textContent = text;
  if (cls) td.className = cls;
  row.appendChild(td);
}

function when(wall) {
  return new Date(wall * 1000).toLocaleString();
}

function liveDecisions() {
  const table = document.querySelector("#decisions tbody");
  const state = document.getElementById("live-state");
  if (!table) return;
  const source = new EventSource("/dashboard/decisions");
  source.addEventListener("decision", (event) => {
    const d = JSON.parse(event.data);
    const row = document.createElement("tr");
    row.dataset.live = "";  // arrived after the page loaded
    cell(row, when(d.wall));
    cell(row, d.kind, "kind-" + d.kind);
    cell(row, d.person_id === null ? "-" : "#" + d.person_id);
    cell(row, d.similarity === null ? "-" : d.similarity.toFixed(2));
    cell(row, d.liveness);
    cell(row, d.action);
    cell(row, d.reason);
    table.insertBefore(row, table.firstChild);
    while (table.rows.length > 50) table.deleteRow(table.rows.length - 1);
  });
  source.addEventListener("down", (event) => {
    state.textContent = "door service unreachable: " + JSON.parse(event.data);
    state.classList.add("down");
  });
  setInterval(refreshStatus, 3000);
}

async function refreshStatus() {
  const reply = await fetch("/dashboard/status.json", { credentials: "same-origin" });
  if (!reply.ok) return;
  const status = await reply.json();
  for (const el of document.querySelectorAll("#status [data-field], [data-field='status']")) {
    const value = status[el.dataset.field];
    if (value === undefined) continue;
    el.textContent = value;
    const tile = el.closest(".tile");
    if (tile && (el.dataset.field === "door" || el.dataset.field === "camera")) {
      tile.className = "tile " + el.dataset.field + "-" + value;
    }
  }
}

function cameraInfo() {
  const person = document.getElementById("seen-person");
  const faces = document.getElementById("seen-faces");
  if (!person || !faces) return;
  const source = new EventSource("/camera/info");
  source.addEventListener("frame", (event) => {
    const info = JSON.parse(event.data);
    const p = info.person;
    if (p) {
      const similarity = p.similarity === null ? "-" : p.similarity.toFixed(2);
      const who = p.person_id === null ? "unknown" : "#" + p.person_id;
      const liveness = p.liveness === null ? "off" : p.liveness.toFixed(2) + " (" + p.verdict + ")";
      const followed = p.tracked ? " (decided, followed since its last check)" : "";
      person.textContent = who + ", similarity " + similarity + ", liveness " + liveness + followed;
    } else {
      person.textContent = info.faces.length ? "no face good enough to identify" : "nobody";
    }
    faces.replaceChildren();
    for (const face of info.faces) {
      const li = document.createElement("li");
      li.className = face.passed ? "ok" : "bad";
      const said = face.passed ? "good face" : face.reasons.length ? "not usable: " + face.reasons.join(", ").replaceAll("_", " ") : "not checked yet";
      li.textContent = face.tracked ? said + " (followed)" : said;
      faces.appendChild(li);
    }
  });
  source.addEventListener("down", (event) => {
    person.textContent = "door service unreachable: " + JSON.parse(event.data);
  });
}

function captureProgress() {
  const box = document.getElementById("capture-state");
  if (!box) return;
  const field = (name) => box.querySelector("[data-field='" + name + "']");
  const timer = setInterval(async () => {
    const reply = await fetch(box.dataset.progress, { credentials: "same-origin" });
    if (!reply.ok) return;
    const c = await reply.json();
    field("guidance").textContent = c.guidance;
    field("state").textContent = c.state + " (" + c.collected + " of " + c.needed + " good captures)";
    field("bar").max = c.needed || 1;
    field("bar").value = c.collected;
    if (c.state === "enrolled") {
      clearInterval(timer);
      field("guidance").textContent = "done";
      const link = document.createElement("a");
      link.href = "/people/" + c.person_id;
      link.textContent = c.name + " is enrolled as #" + c.person_id;
      field("result").replaceChildren(link);
    } else if (c.state === "failed") {
      clearInterval(timer);
      field("result").textContent = "not enrolled: " + c.error;
      field("result").className = "error";
    }
  }, 500);
}

document.addEventListener("DOMContentLoaded", () => {
  liveDecisions();
  cameraInfo();
  captureProgress();
});
