// Each <time datetime> on the page also shown in the browser's own time zone (the page says
// how long ago and the UTC time; this adds the local time after it, and as its tooltip).
"use strict";
document.querySelectorAll("time[datetime]").forEach(function (element) {
  var at = new Date(element.getAttribute("datetime"));
  if (isNaN(at.getTime())) {
    return;
  }
  var local = at.toLocaleString(undefined, { dateStyle: "long", timeStyle: "short" });
  element.title = local;
  var note = document.createElement("span");
  note.className = "local-time";
  note.textContent = " (your time: " + local + ")";
  element.after(note);
});
