using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace BackupMx.Smtp.Tests;

/// <summary>
/// A self-signed certificate and key written as PEM files into a temporary folder, and the same
/// certificate as PKCS#12 for the other formats the receiver reads.
/// </summary>
internal sealed class TestCertificate : IDisposable
{
    private readonly string _folder;

    public TestCertificate(string hostName = "mx.backup.test", DateTimeOffset? notAfter = null)
    {
        _folder = Directory.CreateTempSubdirectory("backupmx-tls-").FullName;
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=" + hostName, key, HashAlgorithmName.SHA256);
        var names = new SubjectAlternativeNameBuilder();
        names.AddDnsName(hostName);
        request.CertificateExtensions.Add(names.Build());
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], critical: false));
        var expiry = notAfter ?? DateTimeOffset.UtcNow.AddDays(90);
        using var certificate = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), expiry);

        CertificatePath = Path.Combine(_folder, "cert.pem");
        KeyPath = Path.Combine(_folder, "key.pem");
        CertificatePem = certificate.ExportCertificatePem();
        KeyPem = key.ExportPkcs8PrivateKeyPem();
        File.WriteAllText(CertificatePath, CertificatePem);
        File.WriteAllText(KeyPath, KeyPem);
        Thumbprint = certificate.Thumbprint;
        NotAfter = new DateTimeOffset(certificate.NotAfter.ToUniversalTime(), TimeSpan.Zero);
        Pfx = certificate.Export(X509ContentType.Pkcs12);
        PfxWithPassword = certificate.Export(X509ContentType.Pkcs12, PfxPassword);
    }

    public const string PfxPassword = "correct horse";

    public string CertificatePath { get; }

    public string KeyPath { get; }

    public string CertificatePem { get; }

    public string KeyPem { get; }

    public string Thumbprint { get; }

    public DateTimeOffset NotAfter { get; }

    /// <summary>PKCS#12 without a password, as Key Vault exports it.</summary>
    public byte[] Pfx { get; }

    /// <summary>PKCS#12 protected by <see cref="PfxPassword"/>.</summary>
    public byte[] PfxWithPassword { get; }

    /// <summary>The text a Key Vault certificate's secret holds, and a mounted secret file contains.</summary>
    public string Base64Pfx => Convert.ToBase64String(Pfx);

    /// <summary>A path in this certificate's temporary folder.</summary>
    public string PathOf(string fileName) => Path.Combine(_folder, fileName);

    public Dictionary<string, string?> Settings() => new()
    {
        ["BackupMx:Smtp:TlsCertificatePath"] = CertificatePath,
        ["BackupMx:Smtp:TlsKeyPath"] = KeyPath,
    };

    public void Dispose() => Directory.Delete(_folder, recursive: true);
}
