/*
 * The shim's natives (guest/shim/natives.c), which wx_init hands to the bundle as `natives`
 * (see build/guest.py: the bundle is one function of it), and the encodings they take.
 *
 * W:
 *   blob(x)            append a string (UTF-8), bytes, or a list of them to the output blob;
 *                      returns its length (undefined appends nothing)
 *   encode(s, enc)     string -> ArrayBuffer          decode(bytes, enc) -> string
 *   random(view)       fill from WASI random_get      hostCall(name, parts) -> ArrayBuffer
 *   parseJSON(x)       JSON.parse of a string or UTF-8 bytes, safe against deep nesting
 *   sharedArea()       [ArrayBuffer over shared state's cells, the area's address] (ABI.md)
 *   sharedPut(path, json)  log a top-level write of shared state (json undefined: a delete);
 *                      false when it is for a host call instead (natives.c says when)
 *   sharedGet(path, missing, object)  shared.get once the host has the area: missing,
 *                      object, an array's JSON as an ArrayBuffer, or the value itself
 *   done(rid, status, headers, body)  append body to the blob; returns the report's
 *                      "[rid,status,headers,off,len]" entry for the finished response
 *   fromShape(template, ...values)    a new object shaped like template, holding values
 *   jobsPending()      whether a promise job waits    zeroTimer()  a zero-delay timer was queued
 *   enter(f)           the code that runs next, and the jobs and promise reactions it queues,
 *                      belong to flight f (null: none); a reaction runs in the flight current
 *                      when it was registered, whoever settles its promise
 *   current()          the flight the running code belongs to
 *   ready()            something the host waits for is in this crossing's report
 *   urlParse(input, base)   input parsed (against base, unless undefined) by ada, as [href,
 *                      ...its components' offsets], or null (guest/shim/url.c says which)
 *   urlSet(href, field, value)  the same after setter `field` ran, or null if it refused
 *   urlCanParse(input, base)  whether urlParse would succeed
 *   domainToUnicode(ascii)  UTS #46 ToUnicode of a domain
 */

const W = natives; // the parameter of the function the bundle is (build/guest.py)

// The encodings of W.encode and W.decode (ENC_* in guest/shim/natives.c).
const UTF8 = 0, LATIN1 = 1, HEX = 2, BASE64 = 3, BASE64URL = 4, UTF8_FATAL = 5, UTF16LE = 6;

export { BASE64, BASE64URL, HEX, LATIN1, UTF16LE, UTF8, UTF8_FATAL, W };
