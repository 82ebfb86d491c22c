// Each <time datetime> on the page gets the day and time in the browser's own time zone as its
// title (the page says how long ago; a server cannot know the person's zone).
"use strict";
document.querySelectorAll("time[datetime]").forEach(function (element) {
  var at = new Date(element.getAttribute("datetime"));
  if (!isNaN(at.getTime())) {
    element.title = at.toLocaleString(undefined, { dateStyle: "long", timeStyle: "short" });
  }
});
