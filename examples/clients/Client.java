// slarules from Java 17, over HTTP: post case files to `slarules serve`, print each verdict.
//
//   java Client.java [--lang zh|en] [--as-of INSTANT] URL CASE...
//   java Client.java http://127.0.0.1:8080 ../cases/tb1-late.yaml > verdict.json
//
// Standard library only (java.net.http); run as a single source file, nothing to build. Each
// verdict is written to stdout exactly as the server sent it: the bytes of
// `slarules adjudicate --format json`. With SLARULES_TOKEN set, it is sent as a bearer token
// (for a server started with --token-file). A refused case prints the server's located error
// (JSON: message, line, column, field) on stderr; the exit status is then 2 (the case or request
// was refused: 4xx) or 1 (the server failed or could not be reached), as the CLI's are.
import java.io.FileNotFoundException;
import java.io.IOException;
import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

public class Client {
    static final String USAGE = "usage: java Client.java [--lang zh|en] [--as-of INSTANT] URL CASE...";

    public static void main(String[] args) throws InterruptedException {
        String lang = null;
        String asOf = null;
        List<String> rest = new ArrayList<>();
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--lang", "--as-of" -> {
                    if (i + 1 == args.length) fail(2, USAGE);
                    if (args[i].equals("--lang")) lang = args[++i]; else asOf = args[++i];
                }
                default -> rest.add(args[i]);
            }
        }
        if (rest.size() < 2) fail(2, USAGE);
        StringBuilder query = new StringBuilder();
        if (lang != null) query.append(query.isEmpty() ? "?" : "&").append("lang=").append(encode(lang));
        if (asOf != null) query.append(query.isEmpty() ? "?" : "&").append("as_of=").append(encode(asOf));
        URI uri = URI.create(rest.get(0).replaceAll("/+$", "") + "/v1/adjudicate" + query);
        String token = System.getenv("SLARULES_TOKEN");
        HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(10)).build();
        int status = 0;
        for (String file : rest.subList(1, rest.size())) {
            HttpRequest.Builder request = HttpRequest.newBuilder(uri).timeout(Duration.ofSeconds(60));
            try {
                request.POST(HttpRequest.BodyPublishers.ofFile(Path.of(file)));
            } catch (FileNotFoundException e) {
                fail(2, file + ": no such file");
            }
            String type = contentType(file);
            if (type != null) request.header("Content-Type", type);
            if (token != null && !token.isBlank()) request.header("Authorization", "Bearer " + token.strip());
            HttpResponse<byte[]> response;
            try {
                response = http.send(request.build(), HttpResponse.BodyHandlers.ofByteArray());
            } catch (IOException e) {
                fail(1, uri + ": " + e);
                return;
            }
            int code = response.statusCode();
            if (code == 200) {
                System.out.write(response.body(), 0, response.body().length);
                System.out.flush();
            } else {
                System.err.print(file + ": HTTP " + code + " ");
                System.err.write(response.body(), 0, response.body().length);
                System.err.flush();
                status = Math.max(status, code < 500 ? 2 : 1);
            }
        }
        System.exit(status);
    }

    // JSON or YAML by the file's extension; any other: none, and the server tells them apart.
    static String contentType(String file) {
        String name = file.toLowerCase();
        if (name.endsWith(".json")) return "application/json";
        if (name.endsWith(".yaml") || name.endsWith(".yml")) return "application/yaml";
        return null;
    }

    static String encode(String value) {
        return URLEncoder.encode(value, StandardCharsets.UTF_8);
    }

    static void fail(int status, String message) {
        System.err.println("Client: " + message);
        System.exit(status);
    }
}
