/**
 * The demo service's web player: the catalogue, one audio element, and what a listener
 * would notice — position, buffered seconds, stalls and errors, and which replica streams
 * the audio right now (asked of the demo console, since the audio element hides response
 * headers) — so that while replicas crash and freeze behind the gateway one can watch the
 * music simply go on, and know which replica to kill. When the audio cannot load, the
 * gateway's explanation (problem+json) is fetched and shown instead of the browser's
 * "MEDIA_ELEMENT_ERROR".
 */

export function renderPlayer(replica: string, consoleUrl: string | undefined): string {
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
<body><h1>Gangway demo</h1><p class="muted">A small streaming service: three replicas behind one gateway. This page came from ${replica}; the replica sending the audio is shown below the player.</p>
<ul id="tracks"><li class="muted">Loading the catalogue…</li></ul>
<audio id="audio" controls preload="auto"></audio>
<dl aria-live="off"><dt>Streaming from</dt><dd id="from">–</dd><dt>Position</dt><dd id="pos">–</dd><dt>Buffered</dt><dd id="buf">–</dd><dt>Stalls</dt><dd id="stalls">0</dd><dt>Errors</dt><dd id="errors">0</dd></dl>
<p id="problem" role="status" hidden></p>
<p><a href="/status">Service status</a> · <a href="/api/tracks">Catalogue JSON</a></p>
<script>
(function(){
var CONSOLE=${JSON.stringify(consoleUrl ?? null).replace(/</g, '\\u003c')};
var audio=document.getElementById('audio'),list=document.getElementById('tracks'),stalls=0,errors=0,started=false;
// The player's own id in the audio URL: the replica streaming it reports it to the console.
var listener=Math.random().toString(36).slice(2,10);
window.demo={errors:0,stalls:0,listener:listener};
function fmt(s){return isFinite(s)?s.toFixed(1)+' s':'–'}
function text(id,t){document.getElementById(id).textContent=t}
function play(t,btn){window.demo.from=undefined;text('from','–');
 document.querySelectorAll('#tracks button').forEach(function(b){b.setAttribute('aria-pressed','false')});
 btn.setAttribute('aria-pressed','true');started=false;document.getElementById('problem').hidden=true;
 audio.src=t.url+'?listener='+listener;audio.play().catch(function(){})}
fetch('/api/tracks').then(function(r){if(!r.ok)return explain(r).then(function(m){throw new Error(m)});
 return r.json()}).then(function(ts){
 list.textContent='';window.demo.tracks=ts;
 ts.forEach(function(t){var li=document.createElement('li'),b=document.createElement('button');
 b.type='button';b.setAttribute('aria-pressed','false');b.textContent=t.title+' · '+t.seconds+' s';
 b.onclick=function(){play(t,b)};b.dataset.id=t.id;li.appendChild(b);
 list.appendChild(li)})
}).catch(function(e){list.textContent='The catalogue could not be loaded: '+e.message});
// The gateway explains its own errors in problem+json: title, detail, when to come back.
function explain(r){var ct=r.headers.get('content-type')||'';
 if(ct.indexOf('json')<0)return Promise.resolve('the service answered '+r.status);
 
 return r.json().then(function(p){var after=r.headers.get('retry-after');
 return (p.title||('the service answered '+r.status))+(p.detail?' — '+p.detail:'')+
  (after&&/^[0-9]+$/.test(after)?' Try again in '+(after<90?after+' s':'about '+Math.round(after/60)+' min')+'.':'')})}
// Waiting before the first second of a track plays is buffering, not a stall.
audio.addEventListener('playing',function(){started=true});
audio.addEventListener('waiting',function(){if(!started)return;
 stalls++;window.demo.stalls=stalls;text('stalls',stalls)});
 
audio.addEventListener('error',function(){errors++;window.demo.errors=errors;text('errors',errors);
 var p=document.getElementById('problem');var src=audio.currentSrc;if(!src)return;
 fetch(src,{headers:{accept:'application/problem+json',range:'bytes=0-0'}}).then(function(r){return r.ok?'the audio could not be played ('+(audio.error&&audio.error.message||'media error')+')':explain(r)})
 .catch(function(){return 'the service could not be reached'})
 .then(function(m){p.textContent='This track cannot play right now: '+m;
 p.hidden=false})});
setInterval(function(){text('pos',fmt(audio.currentTime)+' of '+fmt(audio.duration));
 var b=audio.buffered;text('buf',b.length?fmt(b.end(b.length-1)-audio.currentTime)+' ahead':'–')},250);
// Which replica streams this player's audio now (it changes when Gangway resumes from another).
if(CONSOLE)setInterval(function(){if(!audio.currentSrc)return;
 fetch(CONSOLE+'api/listeners/'+listener).then(function(r){return r.json()}).then(function(j){
 if(j.replica){window.demo.from=j.replica;text('from',j.replica)}else if(window.demo.from)text('from',window.demo.from+' (the whole track has arrived)')}).catch(function(){})},1000);
 
})();
</script></body></html>
`;
}
