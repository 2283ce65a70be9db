using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;

namespace BackupMx.Functions.Tests;

/// <summary>
/// Evaluates the ARM template expressions a template uses for its own values ("[if(...)]",
/// "[createObject(...)]", parameters, variables, lambdas), so that a test can see what a module
/// deploys for given parameters. Functions that need a deployment (reference, subscription,
/// resourceId) are not evaluated: a test compares such expressions as text.
/// </summary>
internal sealed class ArmTemplateEvaluator(JsonObject template, IReadOnlyDictionary<string, JsonNode?> parameters)
{
    private readonly Dictionary<string, JsonNode?> _variables = [];
    private readonly Dictionary<string, JsonNode?> _lambda = [];

    /// <summary>A nested deployment's template with the values its module passes in.</summary>
    public static ArmTemplateEvaluator ForModule(JsonObject module, IReadOnlyDictionary<string, JsonNode?> parameters)
    {
        var template = module["properties"]!["template"]!.AsObject();
        var values = new Dictionary<string, JsonNode?>(parameters);
        foreach (var (name, definition) in template["parameters"]?.AsObject() ?? [])
        {
            if (!values.ContainsKey(name) && definition?["defaultValue"] is { } fallback)
            {
                values[name] = fallback.DeepClone();
            }
        }

        return new ArmTemplateEvaluator(template, values);
    }

    public JsonObject Template => template;

    /// <summary>The template's resources, whether listed (an array) or by symbolic name (languageVersion 2.0).</summary>
    public IEnumerable<JsonObject> Resources() => template["resources"] switch
    {
        JsonArray list => list.Select(r => r!.AsObject()),
        JsonObject named => named.Select(p => p.Value!.AsObject()),
        _ => [],
    };

    /// <summary>Every expression string inside the node replaced by its value.</summary>
    public JsonNode? Evaluate(JsonNode? node) => node switch
    {
        JsonValue value when value.TryGetValue<string>(out var text) => EvaluateString(text),
        JsonObject obj => new JsonObject(obj.Select(p => KeyValuePair.Create(EvaluateString(p.Key)!.GetValue<string>(), Evaluate(p.Value)))),
        JsonArray array => new JsonArray(array.Select(Evaluate).ToArray()),
        _ => node?.DeepClone(),
    };

    public JsonNode? Variable(string name)
    {
        if (!_variables.TryGetValue(name, out var value))
        {
            var definition = template["variables"]?[name] ?? throw new InvalidOperationException($"No variable '{name}'.");
            value = _variables[name] = Evaluate(definition);
        }

        return value?.DeepClone();
    }

    private JsonNode? EvaluateString(string text)
    {
        if (text.StartsWith('[') && text.EndsWith(']') && !text.StartsWith("[[", StringComparison.Ordinal))
        {
            var parser = new Parser(text[1..^1]);
            var expression = parser.ParseExpression();
            parser.End();
            return Evaluate(expression);
        }

        return JsonValue.Create(text);
    }

    private JsonNode? Evaluate(Node node)
    {
        switch (node)
        {
            case Literal literal:
                return literal.Value?.DeepClone();
            case Member member:
                var target = Evaluate(member.Target);
                return target switch
                {
                    JsonObject obj => obj.FirstOrDefault(p => string.Equals(p.Key, member.Name, StringComparison.OrdinalIgnoreCase)).Value?.DeepClone(),

                    // A property of a deployment function's result (listKeys(...).x) stays as text too.
                    JsonValue v when v.TryGetValue<string>(out var shown) && shown.StartsWith('[') && shown.EndsWith(']') => JsonValue.Create($"{shown[..^1]}.{member.Name}]"),
                    _ => throw new InvalidOperationException($"'.{member.Name}' on {target?.ToJsonString() ?? "null"}"),
                };
            case Index index:
                var collection = Evaluate(index.Target);
                var key = Evaluate(index.Key);
                return collection switch
                {
                    JsonArray array => array[key!.GetValue<int>()]?.DeepClone(),
                    JsonObject o => o[key!.GetValue<string>()]?.DeepClone(),
                    _ => throw new InvalidOperationException("Index on " + collection?.ToJsonString()),
                };
            case Call call:
                return Invoke(call);
            default:
                throw new InvalidOperationException(node.GetType().Name);
        }
    }

    private JsonNode? Invoke(Call call)
    {
        JsonNode? Arg(int i) => Evaluate(call.Arguments[i]);
        List<JsonNode?> All() => call.Arguments.Select(Evaluate).ToList();
        switch (call.Name.ToLowerInvariant())
        {
            case "parameters":
                var parameter = Arg(0)!.GetValue<string>();
                return parameters.TryGetValue(parameter, out var value) ? value?.DeepClone() : throw new InvalidOperationException($"No value for parameter '{parameter}'.");
            case "variables":
                return Variable(Arg(0)!.GetValue<string>());
            case "if":
                return Truthy(Arg(0)) ? Arg(1) : Arg(2);
            case "not":
                return JsonValue.Create(!Truthy(Arg(0)));
            case "and":
                return JsonValue.Create(All().All(Truthy));
            case "or":
                return JsonValue.Create(All().Any(Truthy));
            case "equals":
                return JsonValue.Create(JsonNode.DeepEquals(Arg(0), Arg(1)));
            case "empty":
                return JsonValue.Create(Arg(0) switch
                {
                    null => true,
                    JsonArray a => a.Count == 0,
                    JsonObject o => o.Count == 0,
                    var v => v.GetValue<object>() is string s && s.Length == 0,
                });
            case "createobject":
                var created = new JsonObject();
                for (var i = 0; i < call.Arguments.Count; i += 2)
                {
                    created[Arg(i)!.GetValue<string>()] = Arg(i + 1);
                }

                return created;
            case "createarray":
                return new JsonArray(All().ToArray());
            case "union":
                var merged = new JsonObject();
                foreach (var part in All().OfType<JsonObject>())
                {
                    foreach (var (name, v) in part)
                    {
                        merged[name] = v?.DeepClone();
                    }
                }

                return merged;
            case "concat":
                var parts = All();
                return parts.All(p => p is JsonArray)
                    ? new JsonArray([.. parts.SelectMany(p => p!.AsArray()).Select(e => e?.DeepClone())])
                    : JsonValue.Create(string.Concat(parts.Select(Text)));
            case "format":
                var values = All();
                var format = values[0]!.GetValue<string>();
                return JsonValue.Create(string.Format(CultureInfo.InvariantCulture, format, values.Skip(1).Select(Text).ToArray()));
            case "string":
                return JsonValue.Create(Text(Arg(0)));
            case "split":
                return new JsonArray(Arg(0)!.GetValue<string>().Split(Arg(1)!.GetValue<string>()).Select(s => (JsonNode?)JsonValue.Create(s)).ToArray());
            case "last":
                return Arg(0) is JsonArray list ? list[^1]?.DeepClone() : JsonValue.Create(Arg(0)!.GetValue<string>()[^1..]);
            case "items":
                return new JsonArray(Arg(0)!.AsObject().Select(p => (JsonNode?)new JsonObject { ["key"] = p.Key, ["value"] = p.Value?.DeepClone() }).ToArray());
            case "map":
                var source = Arg(0)!.AsArray();
                var lambda = (Call)call.Arguments[1];
                var variable = Evaluate(lambda.Arguments[0])!.GetValue<string>();
                var mapped = new JsonArray();
                foreach (var item in source)
                {
                    _lambda[variable] = item?.DeepClone();
                    mapped.Add(Evaluate(lambda.Arguments[1]));
                }

                _lambda.Remove(variable);
                return mapped;
            case "lambdavariables":
                return _lambda[Arg(0)!.GetValue<string>()]?.DeepClone();
            case "tolower":
                return JsonValue.Create(Arg(0)!.GetValue<string>().ToLowerInvariant());
            case "json":
                return JsonNode.Parse(Arg(0)!.GetValue<string>());
            default:
                // Deployment functions (reference, resourceId, subscription, ...) stay as text, with
                // their arguments evaluated.
                var shown = call with { Arguments = [.. All().Select(a => (Node)new Literal(a))] };
                return JsonValue.Create("[" + shown + "]");
        }
    }

    private static bool Truthy(JsonNode? node) => node is JsonValue value && value.TryGetValue<bool>(out var b) ? b : throw new InvalidOperationException("Not a bool: " + node?.ToJsonString());

    private static string Text(JsonNode? node) => node is JsonValue value && value.TryGetValue<string>(out var s) ? s : node?.ToJsonString() ?? "null";

    private abstract record Node;

    private sealed record Literal(JsonNode? Value) : Node
    {
        public override string ToString() => Value is JsonValue v && v.TryGetValue<string>(out var s) ? "'" + s.Replace("'", "''", StringComparison.Ordinal) + "'" : Value?.ToJsonString() ?? "null";
    }

    private sealed record Member(Node Target, string Name) : Node
    {
        public override string ToString() => $"{Target}.{Name}";
    }

    private sealed record Index(Node Target, Node Key) : Node
    {
        public override string ToString() => $"{Target}[{Key}]";
    }

    private sealed record Call(string Name, List<Node> Arguments) : Node
    {
        public override string ToString() => $"{Name}({string.Join(", ", Arguments)})";
    }

    private sealed class Parser(string text)
    {
        private int _at;

        public void End()
        {
            Skip();
            if (_at != text.Length)
            {
                throw new FormatException($"Unexpected '{text[_at..]}' in '{text}'.");
            }
        }

        public Node ParseExpression()
        {
            Skip();
            Node node;
            if (Peek() == '\'')
            {
                node = new Literal(JsonValue.Create(ReadString()));
            }
            else if (char.IsDigit(Peek()) || Peek() == '-')
            {
                var start = _at++;
                while (_at < text.Length && char.IsDigit(text[_at]))
                {
                    _at++;
                }

                node = new Literal(JsonValue.Create(int.Parse(text[start.._at], CultureInfo.InvariantCulture)));
            }
            else
            {
                var name = ReadName();
                Skip();
                if (name is "true" or "false" && Peek() != '(')
                {
                    node = new Literal(JsonValue.Create(name == "true"));
                }
                else if (name == "null" && Peek() != '(')
                {
                    node = new Literal(null);
                }
                else
                {
                    Expect('(');
                    var arguments = new List<Node>();
                    Skip();
                    if (Peek() != ')')
                    {
                        do
                        {
                            arguments.Add(ParseExpression());
                            Skip();
                        }
                        while (TryTake(','));
                    }

                    Expect(')');
                    node = new Call(name, arguments);
                }
            }

            while (true)
            {
                Skip();
                if (TryTake('.'))
                {
                    node = new Member(node, ReadName());
                }
                else if (TryTake('['))
                {
                    var key = ParseExpression();
                    Skip();
                    Expect(']');
                    node = new Index(node, key);
                }
                else
                {
                    return node;
                }
            }
        }

        private char Peek() => _at < text.Length ? text[_at] : '\0';

        private void Skip()
        {
            while (_at < text.Length && char.IsWhiteSpace(text[_at]))
            {
                _at++;
            }
        }

        private bool TryTake(char c)
        {
            Skip();
            if (Peek() != c)
            {
                return false;
            }

            _at++;
            return true;
        }

        private void Expect(char c)
        {
            if (!TryTake(c))
            {
                throw new FormatException($"Expected '{c}' at {_at} in '{text}'.");
            }
        }

        private string ReadName()
        {
            var start = _at;
            while (_at < text.Length && (char.IsLetterOrDigit(text[_at]) || text[_at] is '_' or '$'))
            {
                _at++;
            }

            return _at > start ? text[start.._at] : throw new FormatException($"Expected a name at {_at} in '{text}'.");
        }

        private string ReadString()
        {
            var value = new StringBuilder();
            _at++;
            while (true)
            {
                if (_at >= text.Length)
                {
                    throw new FormatException("Unterminated string in " + text);
                }

                if (text[_at] == '\'')
                {
                    if (_at + 1 < text.Length && text[_at + 1] == '\'')
                    {
                        value.Append('\'');
                        _at += 2;
                        continue;
                    }

                    _at++;
                    return value.ToString();
                }

                value.Append(text[_at++]);
            }
        }
    }
}
