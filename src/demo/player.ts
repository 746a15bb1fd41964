/**
 * The demo service's web player: the catalogue, one audio element, and what a listener
 * would notice — position, buffered seconds, stalls and errors — so that while replicas
 * crash and freeze behind the gateway one can watch the music simply go on.
 */

export function renderPlayer(replica: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark"><link rel="icon" href="data:,"><title>Gangway demo · player</title>
<style>
:root{--fg:#1b1f24;--muted:#4d5761;--bg:#fff;--card:#f4f6f8;--line:#d0d7de;--accent:#0b57d0}
@media (prefers-color-scheme:dark){:root{--fg:#e6edf3;--muted:#a8b3bf;--bg:#0d1117;--card:#161b22;--line:#30363d;--accent:#8ab4ff}}
html{font:1rem/1.5 system-ui,sans-serif;color:var(--fg);background:var(--bg)}body{max-width:40rem;margin:0 auto;padding:1.5rem 1.25rem}
h1{font-size:1.5rem;margin:0 0 .25rem}.muted{color:var(--muted)}ul{list-style:none;padding:0}
li button{width:100%;text-align:left;font:inherit;color:var(--fg);background:var(--card);border:1px solid var(--line);border-radius:.5rem;padding:.7rem 1rem;margin:.3rem 0;cursor:pointer}
li button[aria-pressed=true]{border-color:var(--accent);outline:2px solid var(--accent)}audio{width:100%;margin:1rem 0}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.2rem 1rem}dt{color:var(--muted)}dd{margin:0}a{color:var(--accent)}
</style></head>
<body><h1>Gangway demo</h1><p class="muted">A small streaming service: three replicas behind one gateway. This page came from ${replica}.</p>
<ul id="tracks"><li class="muted">Loading the catalogue…</li></ul>
<audio id="audio" controls preload="auto"></audio>
<dl aria-live="off"><dt>Position</dt><dd id="pos">–</dd><dt>Buffered</dt><dd id="buf">–</dd><dt>Stalls</dt><dd id="stalls">0</dd><dt>Errors</dt><dd id="errors">0</dd></dl>
<p><a href="/status">Service status</a> · <a href="/api/tracks">Catalogue JSON</a></p>
<script>
(function(){
var audio=document.getElementById('audio'),list=document.getElementById('tracks'),stalls=0,errors=0;
window.demo={errors:0,stalls:0};
function fmt(s){return isFinite(s)?s.toFixed(1)+' s':'–'}
function play(t,btn){document.querySelectorAll('#tracks button').forEach(function(b){b.setAttribute('aria-pressed','false')});btn.setAttribute('aria-pressed','true');audio.src=t.url;audio.play().catch(function(){})}
fetch('/api/tracks').then(function(r){if(!r.ok)throw new Error('catalogue answered '+r.status);return r.json()}).then(function(ts){
 list.textContent='';window.demo.tracks=ts;
 ts.forEach(function(t){var li=document.createElement('li'),b=document.createElement('button');b.type='button';b.setAttribute('aria-pressed','false');b.textContent=t.title+' · '+t.seconds+' s';b.onclick=function(){play(t,b)};b.dataset.id=t.id;li.appendChild(b);list.appendChild(li)})
}).catch(function(e){list.textContent='The catalogue could not be loaded: '+e.message});
audio.addEventListener('waiting',function(){stalls++;window.demo.stalls=stalls;document.getElementById('stalls').textContent=stalls});
audio.addEventListener('error',function(){errors++;window.demo.errors=errors;document.getElementById('errors').textContent=errors+' ('+(audio.error&&audio.error.message||'media error')+')'});
setInterval(function(){document.getElementById('pos').textContent=fmt(audio.currentTime)+' of '+fmt(audio.duration);
 var b=audio.buffered;document.getElementById('buf').textContent=b.length?fmt(b.end(b.length-1)-audio.currentTime)+' ahead':'–'},250);
})();
</script></body></html>
`;
}
