// The staff page: upload a day's appointments, choose whom to call, tick who was reached.
// Talks only to this service (same origin); nothing is fetched from elsewhere.
"use strict";

const $ = (selector) => document.querySelector(selector);
const POLICY_FIELDS = { calls_per_day: ["calls_per_day"], call_share: ["call_share"],
                        cost: ["slot_value", "call_cost", "call_effect"], threshold: [] };
// Call results. With a store (serve --db) each result goes to POST /calls; until the service has
// answered it waits in QUEUE (localStorage), so a dropped connection or a closed tab loses nothing,
// and it is sent again (its client_id makes a second arrival a no-op). Without a store the queue
// is never sent: results then stay in this browser only, as the page says.
const QUEUE = "noshow-call-queue";
const RESULTS = { "": "not yet", reached: "reached", no_answer: "no answer", wrong_number: "wrong number",
                  rescheduled: "rescheduled", cancelled: "cancelled" };
const RETRY_MS = 2000;
let token = sessionStorage.getItem("noshow-token") || "";
let stored = false;  // whether the service keeps a store (GET /me)
let serverCalls = new Map();  // AppointmentID -> latest call the server holds for the days shown
let shownDays = [];
let flushing = false;

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
  const box = cell("td", undefined, "box result");
  const choice = document.createElement("select");
  choice.setAttribute("aria-label", "result " + appointment.AppointmentID);
  for (const [value, text] of Object.entries(RESULTS)) choice.append(new Option(text, value));
  choice.addEventListener("change", () => {
    if (choice.value) record(appointment, choice.value);
  });
  box.append(choice, cell("small", "", "who"));
  tr.append(patient, risk, reasonCell, box);
  return tr;
}

function queued() {
  try { return JSON.parse(localStorage.getItem(QUEUE) || "[]"); } catch (error) { return []; }
}

function setQueue(calls) {
  localStorage.setItem(QUEUE, JSON.stringify(calls));
}

function clientId() {
  if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
  return Date.now().toString(36) + "-" + Math.random().toString(36).slice(2) + Math.random().toString(36).slice(2);
}

function record(appointment, result) {
  const call = { appointment_id: appointment.AppointmentID, day: appointment.AppointmentDay, result: result,
                 client_id: clientId(), called_at: new Date().toISOString() };
  setQueue(queued().concat([call]));
  showResults();
  flush();
}

// The latest result of each appointment: the server's, unless one waits in the queue.
function latestResults() {
  const latest = new Map(serverCalls);
  for (const call of queued()) latest.set(String(call.appointment_id), Object.assign({ pending: true }, call));
  return latest;
}

function showResults() {
  const latest = latestResults();
  for (const tr of document.querySelectorAll("tr.appt")) {
    const call = latest.get(tr.dataset.appointment);
    const choice = tr.querySelector("select");
    const who = tr.querySelector("small.who");
    choice.value = call ? call.result : "";
    tr.classList.toggle("reached", Boolean(call && call.result === "reached"));
    tr.dataset.result = call ? call.result : "";
    tr.dataset.pending = call && call.pending ? "1" : "";
    who.textContent = !call ? "" : call.pending ? (stored ? "waiting to be sent" : "kept in this browser only")
      : "by " + call.user_name + " " + new Date(call.called_at).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  }
}

async function loadCalls() {
  if (!stored || !shownDays.length) return;
  const latest = new Map();
  for (const day of shownDays) {
    const answer = await (await api("/calls?day=" + encodeURIComponent(day))).json();
    for (const call of answer.calls) latest.set(String(call.appointment_id), call);  // oldest first: the last wins
  }
  serverCalls = latest;
}

// Send the queue, oldest first; keep what could not be sent, and try again soon.
async function flush() {
  if (!stored || flushing) return;
  flushing = true;
  try {
    let calls = queued();
    while (calls.length) {
      const call = calls[0];
      let response;
      try {
        response = await fetch("/calls", { method: "POST", body: JSON.stringify(call),
          headers: Object.assign({ "Content-Type": "application/json" }, token ? { Authorization: "Bearer " + token } : {}) });
      } catch (error) {  // no connection: keep the queue, try again
        setStatus(calls.length + " result(s) waiting: the service does not answer; they are sent when it does.", "error");
        setTimeout(flush, RETRY_MS);
        return;
      }
      if (response.status >= 500 || response.status === 401) {
        setStatus(calls.length + " result(s) waiting: the service answered " + response.status + "; trying again.", "error");
        setTimeout(flush, RETRY_MS);
        return;
      }
      if (!response.ok) {  // refused for good (not on a recorded list): say so, drop it
        const body = await response.json().catch(() => ({ error: response.statusText }));
        setStatus("A result was not recorded: " + (body.error || response.statusText), "error");
      }
      calls = queued().filter((c) => c.client_id !== call.client_id);
      setQueue(calls);
    }
    await loadCalls();
    showResults();
    setStatus("Results saved on the service.", "done");
  } catch (error) {
    setStatus(error.message, "error");
    setTimeout(flush, RETRY_MS);
  } finally {
    flushing = false;
  }
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
  const names = ["rank", "appointment", "patient", "risk", "reasons (log-odds against a typical appointment)", "result"];
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
  if (answer.held_out) {
    $("#summary").textContent += " " + answer.held_out + " more set aside by the randomised holdout: not to be called.";
  }
  if (answer.already_called) {
    $("#summary").textContent += " Warning: " + answer.already_called + " on this list were already called (their results are shown).";
  }
  shownDays = days;
  $("#download").disabled = $("#print").disabled = false;
}

async function makeList() {
  setStatus("Scoring…", "busy");
  try {
    render(await (await post()).json());
    await loadCalls();
    showResults();
    setStatus("List ready: highest risk first within each day.", "done");
    flush();
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

async function whoAmI() {
  try {
    const me = await (await api("/me")).json();
    stored = me.store;
    $("#store").textContent = stored ? "Call results are saved on the service" + (me.user ? ", as " + me.user : "") + "."
      : "Call results are kept in this browser only (the service keeps no store).";
    flush();
  } catch (error) {
    $("#store").textContent = error.message;
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
    whoAmI();
  });
  $("#controls").addEventListener("submit", (event) => { event.preventDefault(); makeList(); });
  $("#file").addEventListener("change", () => { $("#day").value = ""; makeList(); });
  for (const input of document.querySelectorAll("#controls input[type=number], #controls input[type=radio], #day")) {
    input.addEventListener("change", () => { if ($("#file").files[0]) makeList(); });
  }
  $("#download").addEventListener("click", download);
  $("#print").addEventListener("click", () => window.print());
  window.addEventListener("online", flush);
  showModel();
  whoAmI();
});
