# Right after files, as nss-phi(8) says: local accounts win, then the
# directory's users and groups from phiaccessd's snapshot.
passwd after=files phi
group after=files phi
