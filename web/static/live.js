// Live calls: the bus's call events over server-sent events, one table row per call.
(function () {
  "use strict";
  var table = document.getElementById("live-calls");
  var status = document.getElementById("sse-status");
  var rows = {};

  function cells(tr, values) {
    values.forEach(function (v, i) {
      if (v !== undefined && v !== null) { tr.cells[i].textContent = String(v); }
    });
  }

  function rowFor(d) {
    var key = d.campaign_id + ":" + d.lead_id;
    var tr = rows[key];
    if (!tr) {
      tr = table.insertRow(1);
      for (var i = 0; i < 7; i++) { tr.insertCell(); }
      tr.className = "live";
      tr.dataset.lead = d.lead_id;
      rows[key] = tr;
      cells(tr, ["…", d.campaign_id, d.lead_id]);
    }
    return tr;
  }

  var source = new EventSource("/calls/events");
  source.onopen = function () { status.textContent = "●"; status.title = "connected"; };
  source.onerror = function () { status.textContent = "○"; status.title = "reconnecting"; };
  source.addEventListener("call_started", function (e) {
    var d = JSON.parse(e.data);
    cells(rowFor(d), [null, null, null, "dialing", "", "", ""]);
  });
  source.addEventListener("call_turn", function (e) {
    var d = JSON.parse(e.data);
    cells(rowFor(d), [null, null, null, d.state, d.text, d.intent, null]);
  });
  source.addEventListener("call_ended", function (e) {
    var d = JSON.parse(e.data);
    var tr = rowFor(d);
    tr.className = "ended";
    cells(tr, [null, null, null, d.disposition, null, null, d.outcome]);
    var link = document.createElement("a");
    link.href = "/calls/" + d.attempt_id;
    link.textContent = "#" + d.attempt_id;
    link.className = "call-link";
    tr.cells[0].replaceChildren(link);
    delete rows[d.campaign_id + ":" + d.lead_id];
  });
})();
