// The patrol map: fetches the page's GeoJSON (/patrols/map.json with the page's filters) and draws it:
// grid outlines, a track per patrol (a colour per worker), fixed points with their radius (green visited,
// red not), and the events reported on the way. Its settings come from #patrol-map-config (data, not code).
(function () {
  var config = JSON.parse(document.getElementById("patrol-map-config").textContent);
  var element = document.getElementById("patrol-map");
  var note = document.getElementById("patrol-map-note");
  var colours = ["#1d4ed8", "#7c3aed", "#0891b2", "#be185d", "#4d7c0f", "#a16207", "#0f766e", "#9333ea"];
  var map = L.map(element, {attributionControl: true});
  if (config.tiles) {
    L.tileLayer(config.tiles, {maxZoom: 19, attribution: config.attribution}).addTo(map);
  }
  L.control.scale({imperial: false}).addTo(map);
  map.setView([22.5431, 114.0579], 14);

  function text(value) {
    var span = document.createElement("span");
    span.textContent = value == null ? "" : String(value);
    return span.innerHTML;
  }

  function draw(collection) {
    var bounds = L.latLngBounds([]);
    var tracks = 0;
    collection.features.forEach(function (feature) {
      var p = feature.properties;
      if (p.kind === "grid") {
        var outline = L.geoJSON(feature, {style: {color: "#0f2a4a", weight: 2, fillOpacity: 0.04, dashArray: "6 4"}})
          .bindTooltip(text(p.name)).addTo(map);
        bounds.extend(outline.getBounds());
      } else if (p.kind === "track" && feature.geometry) {
        tracks += 1;
        var line = L.geoJSON(feature, {style: {color: colours[p.colour % colours.length], weight: 3, opacity: 0.85}})
          .bindTooltip(text(p.worker_name) + " · " + text(p.started) + "–" + text(p.ended) + " · "
                       + text(p.points) + " " + text(config.words.points) + " · " + text((p.distance_m / 1000).toFixed(1)) + " km")
          .addTo(map);
        bounds.extend(line.getBounds());
      } else if (p.kind === "fixed_point") {
        var lonlat = feature.geometry.coordinates;
        var colour = p.visited ? "#15803d" : "#b91c1c";
        L.circle([lonlat[1], lonlat[0]], {radius: p.radius_m, color: colour, weight: 1, fillOpacity: 0.15}).addTo(map);
        L.circleMarker([lonlat[1], lonlat[0]], {radius: 6, color: colour, weight: 2, fillOpacity: 0.9,
                                                className: "fixed-point " + (p.visited ? "visited" : "missed")})
          .bindTooltip(text(p.name) + " · " + text(p.visited ? config.words.visited + " " + p.visits.join(", ")
                                                              : config.words.missed)
                       + " · " + text(config.words.every.replace("%(hours)s", p.every_hours)))
          .addTo(map);
        bounds.extend([lonlat[1], lonlat[0]]);
      } else if (p.kind === "event") {
        var at = feature.geometry.coordinates;
        L.marker([at[1], at[0]], {icon: L.divIcon({className: "event-marker", html: "", iconSize: [12, 12]})})
          .bindTooltip(text(p.number) + " " + text(p.category) + " · " + text(p.reported) + "<br>" + text(p.description))
          .on("click", function () { window.location = p.href; }).addTo(map);
        bounds.extend([at[1], at[0]]);
      }
    });
    if (bounds.isValid()) {
      map.fitBounds(bounds, {padding: [20, 20], maxZoom: 17, animate: false});
    }
    var words = [];
    if (!tracks) { words.push(config.words.empty); }
    if (collection.thinned) { words.push(config.words.thinned); }
    note.textContent = words.join(" ");
    element.dataset.tracks = String(tracks);
    element.dataset.ready = "1";
  }

  fetch(config.source, {credentials: "same-origin", headers: {"Accept": "application/geo+json"}})
    .then(function (answer) {
      if (!answer.ok) { throw new Error("HTTP " + answer.status); }
      return answer.json();
    })
    .then(draw)
    .catch(function (error) {
      note.textContent = String(error);
      element.dataset.ready = "error";
    });
})();
