// The staff page: upload a day's appointments, choose whom to call, tick who was reached.
// Talks only to this service (same origin); nothing is fetched from elsewhere.
"use strict";

const $ = (selector) => document.querySelector(selector);
const POLICY_FIELDS = { calls_per_day: ["calls_per_day"], call_share: ["call_share"],
                        cost: ["slot_value", "call_cost", "call_effect"], threshold: [] };
const REACHED = "noshow-reached:";  // localStorage key prefix, one per AppointmentID
let token = sessionStorage.getItem("noshow-token") || "";

function setStatus(text, state) {
  const status = $("#status");
  status.textContent = text;
  status.dataset.state = state;
}

async function api(path, options = {}) {
  const headers = Object.assign({}, options.headers || {}, token ? { Authorization: "Bearer " + token } : {});
  const response = await fetch(path, Object.assign({}, options, { headers }));
  if (response.status === 401) {
    $("#token-box").hidden = false;
    throw new Error("This service needs its token: type it under Access, then make the list again.");
  }
  if (!response.ok) {
    const body = await response.json().catch(() => ({ error: response.statusText }));
    throw new Error(body.error || response.statusText);
  }
  return response;
}

function query(format) {
  const params = new URLSearchParams();
  const policy = document.querySelector("input[name=policy]:checked").value;
  for (const name of POLICY_FIELDS[policy]) params.set(name, $("#" + name).value);
  if ($("#day").value) params.set("day", $("#day").value);
  if (format) params.set("format", format);
  return params.toString();
}

async function post(format) {
  const file = $("#file").files[0];
  if (!file) throw new Error("Choose a CSV file first.");
  const form = new FormData();
  form.append("file", file);
  return api("/call-list?" + query(format), { method: "POST", body: form });
}

function cell(tag, text, className) {
  const element = document.createElement(tag);
  if (text !== undefined) element.textContent = text;
  if (className) element.className = className;
  return element;
}

function row(appointment, samePatient) {
  const tr = cell("tr", undefined, "appt");
  tr.dataset.appointment = appointment.AppointmentID;
  tr.append(cell("td", String(appointment.rank_in_day), "num"), cell("td", String(appointment.AppointmentID), "id"));
  const patient = cell("td", appointment.PatientId, "id");
  if (samePatient > 1) {
    patient.append(document.createElement("br"), cell("small", samePatient + " on this list: one call"));
  }
  const risk = cell("td", (100 * appointment.no_show_probability).toFixed(1) + "%", "num risk");
  risk.dataset.probability = appointment.no_show_probability;
  const reasons = cell("ul", undefined, "reasons");
  for (const reason of appointment.reasons.split("; ").filter(Boolean)) reasons.append(cell("li", reason));
  const reasonCell = cell("td");
  reasonCell.append(reasons);
  const box = cell("td", undefined, "box");
  const tick = document.createElement("input");
  tick.type = "checkbox";
  tick.setAttribute("aria-label", "reached " + appointment.AppointmentID);
  tick.checked = localStorage.getItem(REACHED + appointment.AppointmentID) === "1";
  tr.classList.toggle("reached", tick.checked);
  tick.addEventListener("change", () => {
    if (tick.checked) localStorage.setItem(REACHED + appointment.AppointmentID, "1");
    else localStorage.removeItem(REACHED + appointment.AppointmentID);
    tr.classList.toggle("reached", tick.checked);
  });
  box.append(tick);
  tr.append(patient, risk, reasonCell, box);
  return tr;
}

function section(day, appointments, total) {
  const part = cell("section");
  const heading = cell("h2", new Date(day + "T00:00:00").toLocaleDateString(undefined,
    { weekday: "long", year: "numeric", month: "long", day: "numeric" }) + " ");
  heading.append(cell("small", appointments.length + " to call of " + total + " appointments"));
  part.append(heading);
  if (!appointments.length) {
    part.append(cell("p", "No appointment flagged on this day.", "empty"));
    return part;
  }
  const perPatient = {};
  for (const a of appointments) perPatient[a.PatientId] = (perPatient[a.PatientId] || 0) + 1;
  const table = cell("table");
  const head = cell("thead");
  const names = ["rank", "appointment", "patient", "risk", "reasons (log-odds against a typical appointment)", "reached"];
  const headRow = cell("tr");
  for (const name of names) headRow.append(cell("th", name));
  head.append(headRow);
  const body = cell("tbody");
  for (const a of appointments) body.append(row(a, perPatient[a.PatientId]));
  table.append(head, body);
  part.append(table);
  return part;
}

function render(answer) {
  const select = $("#day");
  const chosen = select.value;
  select.replaceChildren(new Option("every day in the file", ""));
  for (const d of answer.days_in_file) select.append(new Option(d.day + " (" + d.appointments + ")", d.day));
  select.value = chosen;
  select.disabled = false;
  const benefit = answer.expected_net_benefit === undefined ? "" :
    "; expected net benefit of the list " + answer.expected_net_benefit.toFixed(2);
  $("#summary").textContent = answer.flagged + " of " + answer.rows + " appointments to call, flagged by " +
    answer.rule + benefit + ".";
  const byDay = new Map();
  for (const a of answer.appointments) {
    if (!byDay.has(a.AppointmentDay)) byDay.set(a.AppointmentDay, []);
    byDay.get(a.AppointmentDay).push(a);
  }
  const totals = new Map(answer.days_in_file.map((d) => [d.day, d.appointments]));
  const days = answer.day ? [answer.day] : answer.days_in_file.map((d) => d.day);
  $("#list").replaceChildren(...days.map((d) => section(d, byDay.get(d) || [], totals.get(d))));
  $("#download").disabled = $("#print").disabled = false;
}

async function makeList() {
  setStatus("Scoring…", "busy");
  try {
    render(await (await post()).json());
    setStatus("List ready: highest risk first within each day.", "done");
  } catch (error) {
    setStatus(error.message, "error");
  }
}

async function download() {
  try {
    const blob = await (await post("csv")).blob();
    const link = document.createElement("a");
    link.href = URL.createObjectURL(blob);
    link.download = "call-list" + ($("#day").value ? "-" + $("#day").value : "") + ".csv";
    link.click();
    URL.revokeObjectURL(link.href);
  } catch (error) {
    setStatus(error.message, "error");
  }
}

async function showModel() {
  try {
    const facts = await (await api("/model")).json();
    const days = facts.data.train_days ? ", trained on appointments " + facts.data.train_days.join(" to ") : "";
    $("#model").textContent = "Model " + facts.name + " (" + facts.backend + ")" + days + "; " + facts.policy.rule + ".";
  } catch (error) {
    $("#model").textContent = error.message;
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("#token").value = token;
  $("#token").addEventListener("change", () => {
    token = $("#token").value;
    sessionStorage.setItem("noshow-token", token);
    showModel();
  });
  $("#controls").addEventListener("submit", (event) => { event.preventDefault(); makeList(); });
  $("#file").addEventListener("change", () => { $("#day").value = ""; makeList(); });
  for (const input of document.querySelectorAll("#controls input[type=number], #controls input[type=radio], #day")) {
    input.addEventListener("change", () => { if ($("#file").files[0]) makeList(); });
  }
  $("#download").addEventListener("click", download);
  $("#print").addEventListener("click", () => window.print());
  showModel();
});
