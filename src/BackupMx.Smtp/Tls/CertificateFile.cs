// Inbound STARTTLS certificates: loading (CertificateFile) and serving with reload (ServerCertificate).
//
// TlsCertificatePath names either PEM (certificate chain, with the key in TlsKeyPath or in the same
// file) or PKCS#12, raw (.pfx/.p12) or as base64 text: a Key Vault certificate's secret holds the
// base64 of its PFX, and Container Apps writes that text as it is into a mounted secret file. The
// format is told from the content, so a mounted file with no extension works. The certificate
// served is re-read on a timer (mounted secrets are swapped in place, behind symlinks, which file
// watchers miss); a file that no longer loads keeps the last good certificate.
using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;

namespace BackupMx.Smtp.Tls;

/// <summary>A certificate as loaded: what TLS serves, the leaf it names, and the content it came from.</summary>
internal sealed record LoadedCertificate(SslStreamCertificateContext Context, X509Certificate2 Leaf, string Format, byte[] Fingerprint)
{
    /// <summary>The DNS names of the subject alternative name extension (what clients check).</summary>
    public IReadOnlyList<string> DnsNames { get; } =
        Leaf.Extensions.OfType<X509SubjectAlternativeNameExtension>().SelectMany(e => e.EnumerateDnsNames()).ToList();
}

/// <summary>The certificate failed to load; the message says why, without the password.</summary>
internal sealed class CertificateLoadException(string message, Exception? inner = null) : Exception(message, inner);

internal static class CertificateFile
{
    private static readonly byte[] PemMarker = "-----BEGIN "u8.ToArray();

    /// <summary>The content of the files, to tell whether they changed since the last load.</summary>
    public static byte[] Fingerprint(string certificatePath, string? keyPath) =>
        Fingerprint(File.ReadAllBytes(certificatePath), keyPath is null ? null : File.ReadAllBytes(keyPath));

    /// <summary>
    /// Loads the certificate and its private key, with any further certificates of the file sent as
    /// the chain. Throws <see cref="CertificateLoadException"/> with the reason when it cannot.
    /// </summary>
    public static LoadedCertificate Load(string certificatePath, string? keyPath, string? password)
    {
        byte[] content;
        byte[]? key;
        try
        {
            content = File.ReadAllBytes(certificatePath);
            key = keyPath is null ? null : File.ReadAllBytes(keyPath);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new CertificateLoadException(ex.Message, ex);
        }

        try
        {
            var (format, (leaf, chain)) = key is not null ? ("PEM", LoadPem(content, key)) : Detect(content, password);
            return new LoadedCertificate(SslStreamCertificateContext.Create(leaf, chain, offline: true), leaf, format, Fingerprint(content, key));
        }
        catch (Exception ex) when (ex is CryptographicException or ArgumentException or FormatException)
        {
            // A key of another certificate comes as an ArgumentException about a parameter name.
            var reason = ex is ArgumentException and not ArgumentNullException ? "the key does not belong to the certificate." : ex.Message;
            throw new CertificateLoadException(reason, ex);
        }
    }

    private static (string Format, (X509Certificate2 Leaf, X509Certificate2Collection Chain) Certificate) Detect(byte[] content, string? password)
    {
        if (content.AsSpan().IndexOf(PemMarker) >= 0)
        {
            // The key in the same file as the certificate, when no key file is given.
            if (content.AsSpan().IndexOf("PRIVATE KEY-----"u8) < 0)
            {
                throw new CertificateLoadException($"the PEM file holds no private key: set {SmtpReceiverOptions.SectionName}:TlsKeyPath or add the key to the file.");
            }

            return ("PEM", LoadPem(content, content));
        }

        // DER: a PKCS#12 PFX is one ASN.1 SEQUENCE.
        if (content.Length > 0 && content[0] == 0x30)
        {
            return ("PKCS#12", LoadPkcs12(content, password));
        }

        var text = Encoding.ASCII.GetString(content).Trim();
        var decoded = new byte[text.Length];
        if (text.Length > 0 && Convert.TryFromBase64String(text, decoded, out var length) && length > 0 && decoded[0] == 0x30)
        {
            return ("base64 PKCS#12", LoadPkcs12(decoded[..length], password));
        }

        throw new CertificateLoadException("the file is neither PEM, PKCS#12 (.pfx, .p12) nor the base64 text of a PKCS#12 file.");
    }

    private static (X509Certificate2 Leaf, X509Certificate2Collection Chain) LoadPem(byte[] certificatePem, byte[] keyPem)
    {
        var certificateText = Encoding.ASCII.GetString(certificatePem);
        var certificate = X509Certificate2.CreateFromPem(certificateText, Encoding.ASCII.GetString(keyPem));
        if (OperatingSystem.IsWindows())
        {
            // SChannel cannot use the ephemeral key a PEM import gives; a PKCS#12 round trip persists it.
            using var ephemeral = certificate;
            certificate = X509CertificateLoader.LoadPkcs12(ephemeral.Export(X509ContentType.Pkcs12), null);
        }

        var all = new X509Certificate2Collection();
        all.ImportFromPem(certificateText);
        var chain = new X509Certificate2Collection();
        foreach (var extra in all.Skip(1))
        {
            chain.Add(extra);
        }

        return (certificate, chain);
    }

    // A Key Vault PFX has no password; LoadPkcs12Collection tries both the null and the empty one.
    private static (X509Certificate2 Leaf, X509Certificate2Collection Chain) LoadPkcs12(byte[] pfx, string? password)
    {
        var all = X509CertificateLoader.LoadPkcs12Collection(pfx, string.IsNullOrEmpty(password) ? null : password);
        var leaf = all.FirstOrDefault(c => c.HasPrivateKey)
            ?? throw new CertificateLoadException("the PKCS#12 file holds no certificate with a private key.");
        var chain = new X509Certificate2Collection();
        foreach (var other in all.Where(c => !ReferenceEquals(c, leaf)))
        {
            chain.Add(other);
        }

        return (leaf, chain);
    }

    private static byte[] Fingerprint(byte[] content, byte[]? key)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        hash.AppendData(content);
        hash.AppendData([0]);
        hash.AppendData(key ?? []);
        return hash.GetHashAndReset();
    }
}
