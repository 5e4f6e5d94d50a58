"""`slarules serve`: the library as a decision service over HTTP, a thin shell over `Engine`.

One module per idea:

- `config`: the command's options, checked before anything starts (`ServeOptions`);
- `supervisor`: the parent process: binds the socket, compiles the packs (the one authority on
  the revision), starts and replaces workers, reloads, drains, holds the decision log;
- `channel`: the frames the supervisor and its workers exchange over a socket pair;
- `worker`: a worker process: uvicorn on the inherited socket, the app, its revision;
- `app`: the routes (a bare ASGI callable: the framework must cost nearly nothing);
- `requests`: reading a request (size, time, content type) and answering it (located errors);
- `guard`: bearer tokens, bounded concurrency and the header timeout;
- `upgrade`: a request offering an upgrade (h2c) served as HTTP/1.1, its body read;
- `revision`: compiled packs as a revision that a request is wholly decided by;
- `decisions`: the decision log's group commit (one fsync for many records);
- `stream`: `/v1/batch`, JSON Lines through the columnar path in bounded memory;
- `metrics`: Prometheus counters shared by every process through one memory-mapped file each;
- `openapi`: the API's description, built from the models `slarules schema` prints;
- `page_data`: what the page asks for besides decisions (the shipped examples, the labels);
- `page/`: the claims officers' page, static files (plain JavaScript modules, no build step).

Nothing here is imported by the rest of slarules: a CLI run that does not serve never pays for it.
"""
