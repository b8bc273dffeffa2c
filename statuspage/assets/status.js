// Live updates of the status page, from /live (server-sent events). The
// server renders and escapes every fragment; this script only places them.
(function () {
  'use strict';
  var main = document.getElementById('main');
  var url = main && main.getAttribute('data-live');
  var status = document.getElementById('live-status');
  var toggle = document.getElementById('live-toggle');
  if (!url || !window.EventSource) {
    if (url && status) status.textContent = 'Live updates need a newer browser; reload to update.';
    return;
  }
  var pageSize = parseInt(main.getAttribute('data-page-size'), 10) || 100;
  var source = null;
  var changed = 0;
  var announce = null;

  function say(text) { if (status) status.textContent = text; }

  function tbody() { return document.querySelector('tbody[data-rows]'); }

  function parseRows(html) {
    var t = document.createElement('template');
    t.innerHTML = html;
    return t.content;
  }

  // keepFocus moves the focus from a link inside old to the same link in
  // fresh, so that a keyboard user keeps their place.
  function keepFocus(old, fresh) {
    var a = document.activeElement;
    if (!a || !old.contains(a)) return null;
    var href = a.getAttribute('href');
    return function () {
      var links = fresh.querySelectorAll('a');
      for (var i = 0; i < links.length; i++) {
        if (links[i].getAttribute('href') === href) { links[i].focus(); return; }
      }
      main.focus();
    };
  }

  function counted() {
    changed++;
    if (announce) return;
    announce = setTimeout(function () {
      var now = new Date().toISOString().slice(11, 19);
      say('Live: ' + changed + (changed === 1 ? ' row' : ' rows') + ' updated at ' + now + ' UTC.');
      changed = 0;
      announce = null;
    }, 1000);
  }

  function findRow(body, key) {
    var rows = body.rows;
    for (var i = 0; i < rows.length; i++) {
      if (rows[i].getAttribute('data-key') === key) return rows[i];
    }
    return null;
  }

  function upsert(msg) {
    var body = tbody();
    if (!body) return;
    var row = parseRows(msg.html).firstElementChild;
    if (!row) return;
    row.classList.add('fresh');
    var old = findRow(body, msg.key);
    if (old) {
      var restore = keepFocus(old, row);
      old.replaceWith(row);
      if (restore) restore();
    } else {
      var empty = body.querySelector('tr.empty');
      if (empty) empty.remove();
      var before = null;
      for (var i = 0; i < body.rows.length; i++) {
        if (Number(body.rows[i].getAttribute('data-t')) < msg.t) { before = body.rows[i]; break; }
      }
      if (!before && body.rows.length >= pageSize) return; // older than the page shows
      body.insertBefore(row, before);
      while (body.rows.length > pageSize) body.deleteRow(body.rows.length - 1);
    }
    counted();
  }

  function remove(msg) {
    var body = tbody();
    var old = body && findRow(body, msg.key);
    if (!old) return;
    if (old.contains(document.activeElement)) main.focus();
    old.remove();
    counted();
  }

  function replaceRows(msg) {
    var body = tbody();
    if (!body) return;
    var fresh = document.createElement('tbody');
    fresh.setAttribute('data-rows', body.getAttribute('data-rows'));
    fresh.appendChild(parseRows(msg.html));
    if (fresh.innerHTML === body.innerHTML) return;
    var restore = keepFocus(body, fresh);
    body.replaceWith(fresh);
    if (restore) restore();
    counted();
  }

  // refresh reloads the content of the page (a job's detail) in place.
  function refresh() {
    fetch(window.location.href, { credentials: 'same-origin', headers: { Accept: 'text/html' } })
      .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
      .then(function (html) {
        var doc = new DOMParser().parseFromString(html, 'text/html');
        var fresh = doc.getElementById('main');
        if (!fresh || fresh.innerHTML === main.innerHTML) return;
        var restore = keepFocus(main, fresh);
        main.innerHTML = fresh.innerHTML;
        if (restore) restore();
        counted();
      })
      .catch(function () { say('Live: this job could not be refreshed; reload the page.'); });
  }

  function on(name, handle) {
    source.addEventListener(name, function (e) {
      var msg;
      try { msg = JSON.parse(e.data); } catch (err) { return; }
      handle(msg);
    });
  }

  function connect() {
    source = new EventSource(url);
    source.onopen = function () { say('Live updates on.'); };
    source.onerror = function () { say('Live updates: reconnecting…'); };
    on('row', upsert);
    on('remove', remove);
    on('rows', replaceRows);
    on('refresh', refresh);
  }

  function pause() {
    if (source) source.close();
    source = null;
    say('Live updates paused.');
  }

  if (toggle) {
    toggle.addEventListener('click', function () {
      var paused = toggle.getAttribute('aria-pressed') === 'true';
      if (paused) {
        toggle.setAttribute('aria-pressed', 'false');
        // What changed meanwhile comes whole: the page's version is stale.
        url = url.replace(/([?&])v=[^&]*/, '$1v=stale');
        connect();
      } else {
        toggle.setAttribute('aria-pressed', 'true');
        pause();
      }
    });
  }
  connect();
})();
